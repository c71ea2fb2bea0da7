"""Loading of the configuration: YAML files, references, overrides, secrets, validation."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from core.config.checks import consistency_problems, live_problems
from core.config.environment import (
    CONFIG_DIR_VARIABLE,
    secret_variables,
    unknown_variable_problems,
)
from core.config.errors import ConfigError, ConfigProblem
from core.config.expansion import REFERENCE_PATTERN, Expansion
from core.config.integrations import IntegrationsSettings
from core.config.messages import problems_from_validation
from core.config.overrides import apply_overrides
from core.config.payout import PayoutSettings
from core.config.product import ProductSettings
from core.config.provenance import Provenance
from core.config.schema import SECTION_MODELS, secret_keys
from core.config.secrets import SecretSettings, read_secret_fields, secrets_directory
from core.config.settings import Settings
from core.config.yaml_source import read_yaml_file

__all__ = ["CONFIG_DIR_VARIABLE", "DEFAULT_CONFIG_DIR", "load_settings", "resolve_config_dir"]

# Relative, so it depends on the working directory; `config check` prints the absolute path.
DEFAULT_CONFIG_DIR = Path("configs")

ModelT = TypeVar("ModelT", bound=BaseModel)


def resolve_config_dir(config_dir: Path | None, environ: Mapping[str, str]) -> Path:
    """Return `config_dir`, else the directory in P2S_CONFIG_DIR, else ./configs.

    The result may be relative, and then depends on the working directory.
    """
    if config_dir is not None:
        return config_dir
    named = environ.get(CONFIG_DIR_VARIABLE, "")
    return Path(named) if named else DEFAULT_CONFIG_DIR


def load_settings(
    config_dir: Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Load, expand, override and validate the configuration.

    Reads payout.yaml, integrations.yaml and product.yaml from the configuration directory,
    expands `${NAME}` references, applies `P2S_<SECTION>__<KEY>` overrides and reads the
    secrets, all from `environ` (default: the process environment). Raises `ConfigError`
    listing every problem found, including `P2S_` variables that nothing reads and what a
    live configuration (dry_run false) lacks.
    """
    environment: Mapping[str, str] = os.environ if environ is None else environ
    try:
        return _load(config_dir, environment)
    except RecursionError:
        # The YAML reader bounds nesting, so this is a last line of defence.
        source = str(resolve_config_dir(config_dir, environment))
        expected = "YAML nested at most a few levels deep"
        message = "invalid YAML: nested too deeply"
        raise ConfigError([ConfigProblem("configuration", source, expected, message)]) from None


def _load(config_dir: Path | None, environment: Mapping[str, str]) -> Settings:
    directory = resolve_config_dir(config_dir, environment)
    provenance = Provenance()
    problems: list[ConfigProblem] = unknown_variable_problems(environment)

    try:
        secrets_dir = secrets_directory(environment)
    except ConfigError as exc:
        problems.extend(exc.problems)
        secrets_dir = None

    secret_paths = secret_keys()
    raw = _read_sections(directory, environment, secrets_dir, secret_paths, provenance, problems)
    problems.extend(apply_overrides(raw, environment, secret_paths, provenance))

    # A key whose reference or override was already reported would fail validation too.
    reported = {problem.key for problem in problems}
    sections: dict[str, BaseModel] = {}
    for section, data in raw.items():
        model = SECTION_MODELS[section]
        try:
            sections[section] = model.model_validate(data)
        except ValidationError as exc:
            found = problems_from_validation(exc, model, section, provenance)
            problems.extend(problem for problem in found if problem.key not in reported)

    secret_values, secret_sources, secret_problems = read_secret_fields(environment, secrets_dir)
    provenance.sources.update(secret_sources)
    problems.extend(secret_problems)
    secrets: SecretSettings | None = None
    try:
        secrets = SecretSettings.model_validate(secret_values)
    except ValidationError as exc:
        problems.extend(problems_from_validation(exc, SecretSettings, "secrets", provenance))

    if problems or secrets is None:
        raise ConfigError(problems)

    settings = Settings.assemble(
        payout=_section(sections, "payout", PayoutSettings),
        integrations=_section(sections, "integrations", IntegrationsSettings),
        product=_section(sections, "product", ProductSettings),
        secrets=secrets,
        config_dir=directory,
        provenance=provenance,
    )
    problems = consistency_problems(settings) + live_problems(settings)
    if problems:
        raise ConfigError(problems)
    return settings


def _read_sections(
    directory: Path,
    environ: Mapping[str, str],
    secrets_dir: Path | None,
    secret_paths: frozenset[str],
    provenance: Provenance,
    problems: list[ConfigProblem],
) -> dict[str, dict[str, Any]]:
    files: dict[str, dict[str, Any]] = {}
    for section in SECTION_MODELS:
        path = directory / f"{section}.yaml"
        provenance.sources[section] = str(path)
        try:
            files[section] = read_yaml_file(path, section)
        except ConfigError as exc:
            problems.extend(exc.problems)

    # Every file is read before any is expanded, so that a key in payout.yaml cannot show a
    # secret that a secret key in integrations.yaml refers to.
    hidden = _secret_reference_names(files, secret_paths)
    raw: dict[str, dict[str, Any]] = {}
    for section, data in files.items():
        path = directory / f"{section}.yaml"
        expansion = Expansion(
            str(path), environ, secrets_dir, secret_paths, provenance, secret_variables=hidden
        )
        raw[section] = {
            str(name): expansion.expand(value, f"{section}.{name}") for name, value in data.items()
        }
        problems.extend(expansion.problems)
    return raw


def _secret_reference_names(
    files: dict[str, dict[str, Any]], secret_paths: frozenset[str]
) -> frozenset[str]:
    """Return the variables that contain secrets: the faucet's own and those of secret keys.

    A secret key's variable counts both under its default name (`yunite_api_key` reads
    YUNITE_API_KEY) and under whatever name the files refer to.
    """
    names = set(secret_variables())
    for key in secret_paths:
        names.add(key.rpartition(".")[2].upper())
        section, *path = key.split(".")
        value: Any = files.get(section)
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, str) and (match := REFERENCE_PATTERN.fullmatch(value)):
            names.add(match["name"])
    return frozenset(names)


def _section(sections: dict[str, BaseModel], name: str, model: type[ModelT]) -> ModelT:
    section = sections[name]
    assert isinstance(section, model)
    return section
