"""Secrets that never come from YAML: read from the environment or from secret files."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr

from core.config.base import ConfigModel
from core.config.errors import ConfigError, ConfigProblem
from core.config.fields import Expected

SECRETS_DIR_VARIABLE = "P2S_SECRETS_DIR"


def _empty_to_none(value: object) -> object:
    return None if value == "" else value


def _check_seed(secret: SecretStr | None) -> SecretStr | None:
    if secret is not None and not re.fullmatch(r"[0-9A-Fa-f]{64}", secret.get_secret_value()):
        raise ValueError("the seed is not 64 hexadecimal digits")
    return secret


def _check_session_secret(secret: SecretStr | None) -> SecretStr | None:
    if secret is not None and len(secret.get_secret_value()) < 32:
        raise ValueError("the key is shorter than 32 characters")
    return secret


class SecretSettings(ConfigModel):
    """Secrets of the faucet itself. Each is unset (None) until its source provides it."""

    discord_bot_token: Annotated[
        SecretStr | None, BeforeValidator(_empty_to_none), Expected("the Discord bot token")
    ] = Field(default=None, description="Token the bot logs in to Discord with.")
    operator_seed: Annotated[
        SecretStr | None,
        BeforeValidator(_empty_to_none),
        AfterValidator(_check_seed),
        Expected("a Banano seed of 64 hexadecimal digits"),
    ] = Field(
        default=None,
        description="Seed of the operator account, used when banano.signer is local.",
    )
    session_secret: Annotated[
        SecretStr | None,
        BeforeValidator(_empty_to_none),
        AfterValidator(_check_session_secret),
        Expected("a random string of at least 32 characters"),
    ] = Field(default=None, description="Key that signs the web server's session cookies.")
    metrics_token: Annotated[
        SecretStr | None, BeforeValidator(_empty_to_none), Expected("a bearer token")
    ] = Field(
        default=None,
        description="Bearer token that GET /metrics requires; unset leaves /metrics open.",
    )


def secret_variable(field_name: str) -> str:
    """Name of the environment variable that contains a `SecretSettings` field."""
    return f"P2S_{field_name.upper()}"


def secret_sources_text(variable: str, file_name: str) -> str:
    """Describe the three places a secret can come from, for messages and the docs."""
    return f"{variable}, a file named by {variable}_FILE, or {file_name} in {SECRETS_DIR_VARIABLE}"


@dataclass(frozen=True)
class SecretValue:
    """A secret read from its source; `source` names where, never what."""

    value: str | None
    source: str


def read_secret(
    key: str,
    variable: str,
    file_name: str,
    environ: Mapping[str, str],
    secrets_dir: Path | None,
) -> SecretValue:
    """Read a secret from `variable`, the file named by `<variable>_FILE`, or `secrets_dir`.

    Raises `ConfigError` when both the variable and its `_FILE` twin are set, or when the file
    cannot be read. File contents are stripped of surrounding whitespace.
    """
    file_variable = f"{variable}_FILE"
    direct = environ.get(variable, "")
    named_file = environ.get(file_variable, "")
    expected = secret_sources_text(variable, file_name)

    if direct and named_file:
        message = f"both {variable} and {file_variable} are set"
        raise ConfigError([ConfigProblem(key, variable, f"only one of them: {expected}", message)])
    if direct:
        return SecretValue(direct, variable)
    if named_file:
        path = Path(named_file)
        return SecretValue(_read_secret_file(key, path, file_variable, expected), str(path))
    if secrets_dir is not None:
        path = secrets_dir / file_name
        if path.is_file():
            return SecretValue(_read_secret_file(key, path, str(path), expected), str(path))
    return SecretValue(None, variable)


def _read_secret_file(key: str, path: Path, source: str, expected: str) -> str | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        message = f"secret file {path} not found"
    except UnicodeDecodeError:
        message = f"secret file {path} is not UTF-8 text"
    except OSError as exc:
        message = f"cannot read secret file {path} ({exc.strerror or type(exc).__name__})"
    else:
        return text.strip() or None
    raise ConfigError([ConfigProblem(key, source, expected, message)])


def secrets_directory(environ: Mapping[str, str]) -> Path | None:
    """Directory named by P2S_SECRETS_DIR, or None; raises `ConfigError` if it is missing."""
    name = environ.get(SECRETS_DIR_VARIABLE, "")
    if not name:
        return None
    path = Path(name)
    if not path.is_dir():
        expected = "a directory of secret files, one per secret, named like operator_seed"
        problem = ConfigProblem(
            "secrets", SECRETS_DIR_VARIABLE, expected, f"{path} is not a directory"
        )
        raise ConfigError([problem])
    return path


def read_secret_fields(
    environ: Mapping[str, str], secrets_dir: Path | None
) -> tuple[dict[str, str | None], dict[str, str], list[ConfigProblem]]:
    """Read every `SecretSettings` field; return the values, their sources and the problems."""
    values: dict[str, str | None] = {}
    sources: dict[str, str] = {}
    problems: list[ConfigProblem] = []
    for name in SecretSettings.model_fields:
        key = f"secrets.{name}"
        try:
            secret = read_secret(key, secret_variable(name), name, environ, secrets_dir)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        values[name] = secret.value
        sources[key] = secret.source
    return values, sources, problems
