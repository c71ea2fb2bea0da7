"""The effective configuration as YAML, with every secret masked."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import yaml
from pydantic import BaseModel, SecretStr

from core.config.fields import MASK, mask_url_password
from core.config.schema import is_secret
from core.config.settings import Settings

UNSET = "(unset)"


class _Dumper(yaml.SafeDumper):
    """SafeDumper that writes a Decimal as its exact digits."""


def _represent_decimal(dumper: yaml.SafeDumper, value: Decimal) -> yaml.ScalarNode:
    text = format(value, "f")
    tag = "tag:yaml.org,2002:float" if "." in text else "tag:yaml.org,2002:int"
    return dumper.represent_scalar(tag, text)


_Dumper.add_representer(Decimal, _represent_decimal)


def render_effective(settings: Settings) -> str:
    """Return the effective configuration as YAML; secrets show as ********** or (unset)."""
    document = {"config_dir": str(settings.config_dir), **_plain_model(settings)}
    body = yaml.dump(
        document,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
    )
    return "# Effective configuration (secrets masked)\n" + body


def _plain_model(model: BaseModel) -> dict[str, object]:
    plain: dict[str, object] = {}
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        if is_secret(info):
            plain[name] = UNSET if value is None else MASK
        else:
            plain[name] = _plain_value(value)
    return plain


def _plain_value(value: object) -> object:
    if isinstance(value, BaseModel):
        return _plain_model(value)
    if isinstance(value, SecretStr):
        return MASK
    if isinstance(value, list):
        return [_plain_value(item) for item in value]
    if isinstance(value, str):
        return mask_url_password(value)
    if isinstance(value, Path):
        return str(value)
    return value
