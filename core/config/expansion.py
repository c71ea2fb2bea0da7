"""Expansion of `${NAME}` and `${NAME:-default}` references in YAML string values."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.config.errors import ConfigError, ConfigProblem
from core.config.provenance import Provenance
from core.config.secrets import read_secret, secret_sources_text
from core.config.urls import url_has_secret

REFERENCE_PATTERN = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")
_REFERENCE_FORMS = (
    "${NAME} or ${NAME:-default}, where NAME has only letters, digits and underscores "
    "(write $$ for a literal $)"
)


@dataclass
class Expansion:
    """Expands the references in one YAML file and records where each value came from.

    A value that is a single reference to an unset variable becomes None (unset). A reference
    inside longer text must have its variable set or carry a default. Secret keys accept only
    a single reference, which is also looked up in `<NAME>_FILE` and in the secrets directory.
    Other keys must not refer to a variable in `secret_variables`, because their values are
    printed and logged as they are.
    """

    source: str
    environ: Mapping[str, str]
    secrets_dir: Path | None
    secret_keys: frozenset[str]
    provenance: Provenance
    secret_variables: frozenset[str] = frozenset()
    problems: list[ConfigProblem] = field(default_factory=list)

    def expand(self, value: Any, key: str) -> Any:
        """Return `value` (at dotted `key`) with every reference replaced."""
        if key in self.secret_keys:
            return self._expand_secret(value, key)
        if isinstance(value, dict):
            return {name: self.expand(item, f"{key}.{name}") for name, item in value.items()}
        if isinstance(value, list):
            return [self.expand(item, f"{key}.{index}") for index, item in enumerate(value)]
        if isinstance(value, str):
            return self._expand_text(value, key)
        return value

    def _problem(self, key: str, expected: str, message: str) -> None:
        self.problems.append(ConfigProblem(key, self.source, expected, message))

    def _expand_secret(self, value: Any, key: str) -> str | None:
        if value is None or value == "":
            return None
        match = REFERENCE_PATTERN.fullmatch(value) if isinstance(value, str) else None
        field_name = key.rpartition(".")[2]
        if match is None or match["default"]:
            variable = field_name.upper()
            expected = f"a reference such as ${{{variable}}}, with the secret in " + (
                secret_sources_text(variable, field_name)
            )
            self._problem(key, expected, "contains a value; put secrets in the environment")
            return None

        variable = match["name"]
        self.provenance.references[key] = variable
        try:
            secret = read_secret(key, variable, field_name, self.environ, self.secrets_dir)
        except ConfigError as exc:
            self.problems.extend(exc.problems)
            return None
        self.provenance.sources[key] = secret.source
        if secret.value is None:
            self.provenance.unset.add(key)
        return secret.value

    def _expand_text(self, text: str, key: str) -> str | None:
        match = REFERENCE_PATTERN.fullmatch(text)
        if match is not None:
            return self._expand_whole(match, key)

        pieces: list[str] = []
        position = 0
        while (dollar := text.find("$", position)) != -1:
            pieces.append(text[position:dollar])
            if text.startswith("$$", dollar):
                pieces.append("$")
                position = dollar + 2
                continue
            if not text.startswith("${", dollar):
                pieces.append("$")
                position = dollar + 1
                continue

            reference = REFERENCE_PATTERN.match(text, dollar)
            if reference is None:
                self._problem(key, _REFERENCE_FORMS, "malformed ${ reference")
                return text
            pieces.append(self._expand_inner(reference, key))
            position = reference.end()
        pieces.append(text[position:])

        # A password written into the file is rejected; one that a reference supplies is not.
        if url_has_secret(REFERENCE_PATTERN.sub("", text)):
            expected = "the URL in an environment variable, for example ${DATABASE_URL}"
            self._problem(key, expected, "contains a URL with a password or token")
        return "".join(pieces)

    def _is_secret_reference(self, variable: str, key: str) -> bool:
        if variable not in self.secret_variables:
            return False
        expected = "a reference to a variable without a secret in it, because this key is shown"
        message = f"refers to secret variable {variable}, which only secret keys may use"
        self._problem(key, expected, message)
        return True

    def _expand_whole(self, match: re.Match[str], key: str) -> str | None:
        variable = match["name"]
        default = match["default"]
        if self._is_secret_reference(variable, key):
            return None
        self.provenance.references[key] = variable
        value = self.environ.get(variable)
        if value is not None and (value or default is None):
            self.provenance.sources[key] = f"{self.source} via ${{{variable}}}"
            return value
        if default is not None:
            return default
        self.provenance.unset.add(key)
        return None

    def _expand_inner(self, match: re.Match[str], key: str) -> str:
        variable = match["name"]
        default = match["default"]
        if self._is_secret_reference(variable, key):
            return ""
        value = self.environ.get(variable)
        if value is not None and (value or default is None):
            return value
        if default is not None:
            return default
        expected = f"{variable} set in the environment, or a default: ${{{variable}:-default}}"
        self._problem(key, expected, f"environment variable {variable} is not set")
        return ""
