"""Environment overrides: `P2S_<SECTION>__<KEY>[__<SUBKEY>...]` deep-merged into the YAML."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from core.config.errors import ConfigProblem
from core.config.provenance import Provenance
from core.config.yaml_source import YamlLimitError, parse_yaml

PREFIX = "P2S_"
SECTIONS = ("payout", "integrations", "product")
_NULL_TEXTS = {"null", "Null", "NULL", "~"}
_SECTION_FORMS = "P2S_PAYOUT__<KEY>, P2S_INTEGRATIONS__<KEY> or P2S_PRODUCT__<KEY>"


def override_variable(key: str) -> str:
    """Name of the environment variable that overrides dotted `key`."""
    return PREFIX + key.upper().replace(".", "__")


def is_override_variable(variable: str) -> bool:
    """Tell whether an environment variable name has the form of an override, in any case."""
    return variable.upper().startswith(PREFIX) and "__" in variable


def parse_override_value(text: str) -> Any:
    """Read an override as a YAML scalar or flow list, keeping decimals exact.

    Text that YAML would read as a mapping, as null without being `null` or `~`, or not at all
    stays the plain string, so `Faucet: Deluxe` and `#1 faucet` keep their literal text.
    Raises `YamlLimitError` for anchors, aliases and too deep nesting, which are never text
    meant literally.
    """
    if text == "":
        return ""
    try:
        value = parse_yaml(text)
    except YamlLimitError:
        raise
    except yaml.YAMLError:
        return text
    if isinstance(value, dict):
        return text
    if value is None and text.strip() not in _NULL_TEXTS:
        return text
    return value


def apply_overrides(
    raw: dict[str, dict[str, Any]],
    environ: Mapping[str, str],
    secret_keys: frozenset[str],
    provenance: Provenance,
) -> list[ConfigProblem]:
    """Merge every override in `environ` into `raw`, in place; return the problems found.

    Section and key names are case-insensitive, so two variables whose names differ only in
    case are a problem: which one wins would depend on their order. Secret keys take the
    variable's text as it is. A section whose file could not be read is skipped, because its
    problem is already listed.
    """
    problems: list[ConfigProblem] = []
    spellings: dict[str, list[str]] = {}
    for variable in sorted(environ):
        if is_override_variable(variable):
            spellings.setdefault(variable.upper(), []).append(variable)

    for variables in spellings.values():
        variable = variables[0]
        parts = [part.lower() for part in variable[len(PREFIX) :].split("__")]
        key = ".".join(parts)
        if len(variables) > 1:
            names = " and ".join(variables)
            expected = "one variable per key; names are case-insensitive"
            message = f"{names} override the same key"
            problems.append(ConfigProblem(key, names, expected, message))
            continue

        if parts[0] not in SECTIONS:
            expected = _SECTION_FORMS
            if parts[0] == "secrets":
                expected += "; secrets have their own variables such as P2S_OPERATOR_SEED"
            problems.append(ConfigProblem(key, variable, expected, f"unknown section {parts[0]!r}"))
            continue
        if "" in parts:
            message = "the variable name has an empty key between two __"
            problems.append(ConfigProblem(key, variable, _SECTION_FORMS, message))
            continue
        if parts[0] not in raw:
            continue

        text = environ[variable]
        try:
            value = (text or None) if key in secret_keys else parse_override_value(text)
        except YamlLimitError as exc:
            expected = "a YAML scalar or a flow list such as [a, b]"
            problems.append(ConfigProblem(key, variable, expected, f"invalid YAML: {exc.message}"))
            continue
        problem = _merge(raw[parts[0]], parts, value, variable)
        if problem is not None:
            problems.append(problem)
            continue
        provenance.forget_below(key)
        provenance.sources[key] = variable
    return problems


def _merge(
    section: dict[str, Any], parts: list[str], value: Any, variable: str
) -> ConfigProblem | None:
    target = section
    for depth, part in enumerate(parts[1:-1], start=2):
        child = target.setdefault(part, {})
        if not isinstance(child, dict):
            parent = ".".join(parts[:depth])
            expected = f"an override of {parent} itself, as {override_variable(parent)}"
            return ConfigProblem(".".join(parts), variable, expected, f"{parent} is not a section")
        target = child
    target[parts[-1]] = value
    return None
