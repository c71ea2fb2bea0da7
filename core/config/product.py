"""Settings from product.yaml: names, links and the default language shown to people."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

from core.config.base import ConfigModel
from core.config.fields import Expected, Flag, HttpUrlOrEmpty, RequiredText


def _check_locale(tag: str) -> str:
    if not re.fullmatch(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*", tag):
        raise ValueError("not a language tag")
    return tag


Locale = Annotated[
    str, AfterValidator(_check_locale), Expected("a language tag such as en, de or pt-BR")
]


class FeatureFlags(ConfigModel):
    """Switches for optional parts of the interface."""

    dry_run_banner: Flag = Field(
        description="Mark replies with a dry-run notice while dry_run is true."
    )


class ProductSettings(ConfigModel):
    """Contents of product.yaml."""

    app_name: RequiredText = Field(description="Name of the faucet shown to players.")
    org_name: RequiredText = Field(description="Name of the organisation that runs it.")
    banner_url: HttpUrlOrEmpty = Field(description="Image shown at the top of embeds.")
    media_kit_url: HttpUrlOrEmpty = Field(description="Link to logos and other media.")
    default_locale: Locale = Field(
        description="Language of replies when the player's Discord locale has no translation."
    )
    feature_flags: FeatureFlags = Field(description="Optional interface parts.")
