"""Base class of every configuration section: frozen, unknown keys rejected, URLs masked in repr."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from core.config.urls import mask_url_secrets


class ConfigModel(BaseModel):
    """A configuration section. Unknown keys are errors and values cannot be reassigned."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def __repr_args__(self) -> Any:
        # A database or node URL may carry a password from the environment.
        for name, value in super().__repr_args__():
            if isinstance(value, str):
                yield name, mask_url_secrets(value)
            else:
                yield name, value
