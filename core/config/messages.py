"""Problem text for pydantic validation errors, built from error types, never from input values."""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from core.config.errors import ConfigProblem
from core.config.provenance import Provenance
from core.config.schema import field_expected, nested_model

_TYPE_MESSAGES = {
    "int": "not an integer",
    "decimal": "not a decimal number",
    "float": "not a number",
    "bool": "not true or false",
    "string": "not a string",
    "list": "not a list",
    "dict": "not a mapping of keys to values",
    "model": "not a mapping of keys to values",
    "model_attributes": "not a mapping of keys to values",
    "literal": "not one of the allowed values",
}


def problems_from_validation(
    error: ValidationError, model: type[BaseModel], section: str, provenance: Provenance
) -> list[ConfigProblem]:
    """Turn each pydantic error on `model` (the `section` root) into a `ConfigProblem`."""
    problems = []
    for details in error.errors(include_url=False, include_input=False):
        location = details["loc"]
        key = ".".join([section, *(str(part) for part in location)])
        message = _message(details)
        if details["type"] == "extra_forbidden":
            message += _suggestion(model, location)
        if key in provenance.unset and details["type"] != "extra_forbidden":
            variable = provenance.references.get(key, "")
            message = f"environment variable {variable} is not set"
        expected = _expected(model, location)
        problems.append(ConfigProblem(key, provenance.source_of(key), expected, message))
    return problems


def _message(details: ErrorDetails) -> str:
    error_type = details["type"]
    context: dict[str, Any] = dict(details.get("ctx") or {})

    if error_type == "missing":
        return "missing key"
    if error_type == "extra_forbidden":
        return "unknown key"
    if error_type == "value_error":
        # Raised by validators in core.config and core.banano. Their texts may quote a
        # shortened amount, but never a secret.
        return str(context.get("error", "invalid value")).rstrip(".")
    if error_type == "greater_than":
        return f"must be greater than {context['gt']}"
    if error_type == "greater_than_equal":
        return f"must be at least {context['ge']}"
    if error_type == "less_than":
        return f"must be less than {context['lt']}"
    if error_type == "less_than_equal":
        return f"must be at most {context['le']}"
    if error_type == "too_short":
        return "the list is too short"
    if error_type == "finite_number":
        return "not a finite number"
    for prefix, message in _TYPE_MESSAGES.items():
        if error_type.startswith(f"{prefix}_"):
            return message
    return "invalid value"


def _expected(model: type[BaseModel], location: tuple[int | str, ...]) -> str:
    current: type[BaseModel] | None = model
    expected = _keys_text(model)
    for part in location:
        if current is None or isinstance(part, int):
            continue
        info = current.model_fields.get(part)
        if info is None:
            return "one of the keys " + ", ".join(current.model_fields)
        expected = field_expected(info) or _keys_text(nested_model(info))
        current = nested_model(info)
    return expected


def _keys_text(model: type[BaseModel] | None) -> str:
    if model is None:
        return "a valid value"
    return "a mapping with the keys " + ", ".join(model.model_fields)


def _suggestion(model: type[BaseModel], location: tuple[int | str, ...]) -> str:
    current: type[BaseModel] | None = model
    for part in location[:-1]:
        info = current.model_fields.get(str(part)) if current is not None else None
        current = nested_model(info) if info is not None else None
    if current is None:
        return ""
    matches = difflib.get_close_matches(str(location[-1]), list(current.model_fields), n=1)
    return f" (did you mean {matches[0]}?)" if matches else ""
