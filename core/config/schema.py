"""Walks over the configuration models: leaf keys, their expected text, and the secret keys."""

from __future__ import annotations

import typing
from collections.abc import Iterator

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from core.config.fields import Expected
from core.config.integrations import IntegrationsSettings
from core.config.payout import PayoutSettings
from core.config.product import ProductSettings

SECTION_MODELS: dict[str, type[BaseModel]] = {
    "payout": PayoutSettings,
    "integrations": IntegrationsSettings,
    "product": ProductSettings,
}


def field_expected(info: FieldInfo) -> str | None:
    """Return the `Expected` text attached to a field, if any."""
    for item in info.metadata:
        if isinstance(item, Expected):
            return item.text
    return None


def nested_model(info: FieldInfo) -> type[BaseModel] | None:
    """Return the section model a field holds, or None for a plain value."""
    annotation = info.annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def leaf_fields(model: type[BaseModel], prefix: str) -> Iterator[tuple[str, FieldInfo]]:
    """Yield `(dotted key, field)` for every key of `model` that contains a value, not a section."""
    for name, info in model.model_fields.items():
        key = f"{prefix}.{name}"
        child = nested_model(info)
        if child is None:
            yield key, info
        else:
            yield from leaf_fields(child, key)


def is_secret(info: FieldInfo) -> bool:
    """Tell whether a field is a `SecretStr`, optional or not."""
    return info.annotation is SecretStr or SecretStr in typing.get_args(info.annotation)


def secret_keys() -> frozenset[str]:
    """Dotted keys of the YAML fields that hold secrets."""
    return frozenset(
        key
        for section, model in SECTION_MODELS.items()
        for key, info in leaf_fields(model, section)
        if is_secret(info)
    )
