"""The effective configuration as YAML, with every secret masked."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import yaml
from pydantic import BaseModel, SecretStr

from core.config.schema import is_secret
from core.config.settings import Settings
from core.config.urls import MASK, mask_url_secrets

UNSET = "(unset)"


class _Dumper(yaml.SafeDumper):
    """SafeDumper that writes a Decimal as its exact digits."""


def _represent_decimal(dumper: yaml.SafeDumper, value: Decimal) -> yaml.ScalarNode:
    text = format(value, "f")
    tag = "tag:yaml.org,2002:float" if "." in text else "tag:yaml.org,2002:int"
    return dumper.represent_scalar(tag, text)


_Dumper.add_representer(Decimal, _represent_decimal)


def render_effective(settings: Settings) -> str:
    """Return the effective configuration as YAML; secrets show as ********** or (unset).

    `config_dir` and `database_file` are absolute, because the defaults are relative to the
    working directory. `database_file` is null unless the database is a SQLite file.
    """
    sections = _plain_model(settings)
    del sections["config_dir"]
    document = {
        "config_dir": str(settings.config_dir.absolute()),
        "database_file": database_file(settings.integrations.database.url),
        **sections,
    }
    body = yaml.dump(
        document,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
    )
    return "# Effective configuration (secrets masked)\n" + body


def database_file(url: str) -> str | None:
    """Return the absolute path of the SQLite file that `url` opens, or None for other databases."""
    # Imported here so that loading the configuration alone does not load SQLAlchemy.
    from core.db.session import normalize_url, sqlite_file_path

    path = sqlite_file_path(normalize_url(url))
    return None if path is None else str(path.absolute())


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
        return mask_url_secrets(value)
    if isinstance(value, Path):
        return str(value)
    return value
