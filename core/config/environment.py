"""Checks of the `P2S_` environment variables, so that a misspelt name is an error, not a no-op.

A typo such as `P2S_METRICS_TOKN` would otherwise leave /metrics open without a word. Every
variable whose name starts with `P2S_` (in any case) must be one of these:

- an override `P2S_<SECTION>__<KEY>`, which `core.config.overrides` checks further;
- a secret variable such as `P2S_OPERATOR_SEED`, or its `_FILE` twin;
- `P2S_CONFIG_DIR` or `P2S_SECRETS_DIR`.

The test suite's own variables start with `PAY2SLAY_TEST_`, outside this prefix, so no test
name needs an exception here.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

from core.config.errors import ConfigProblem
from core.config.overrides import PREFIX, is_override_variable, override_variable
from core.config.schema import SECTION_MODELS, leaf_fields
from core.config.secrets import SECRETS_DIR_VARIABLE, SecretSettings, secret_variable

CONFIG_DIR_VARIABLE = "P2S_CONFIG_DIR"


def secret_variables() -> frozenset[str]:
    """Names of the variables that contain the faucet's own secrets, without `_FILE` twins."""
    return frozenset(secret_variable(name) for name in SecretSettings.model_fields)


def known_variables() -> frozenset[str]:
    """Exact names of the `P2S_` variables that are not overrides."""
    secrets = secret_variables()
    return frozenset(
        {
            CONFIG_DIR_VARIABLE,
            SECRETS_DIR_VARIABLE,
            *secrets,
            *(f"{name}_FILE" for name in secrets),
        }
    )


def unknown_variable_problems(environ: Mapping[str, str]) -> list[ConfigProblem]:
    """Return one problem per `P2S_` variable that nothing reads, with a likely correct name.

    Only names are reported, never values, because a misspelt secret variable still contains
    the secret.
    """
    known = known_variables()
    problems: list[ConfigProblem] = []
    for variable in sorted(environ):
        upper = variable.upper()
        if not upper.startswith(PREFIX) or variable in known or is_override_variable(variable):
            continue

        message = "unknown environment variable; nothing reads it"
        suggestion = suggest_variable(variable, known)
        if suggestion is not None:
            message += f" (did you mean {suggestion}?)"
        expected = (
            "an override P2S_<SECTION>__<KEY> with two underscores between the parts, a secret "
            "variable such as P2S_OPERATOR_SEED, P2S_CONFIG_DIR or P2S_SECRETS_DIR"
        )
        problems.append(ConfigProblem("environment", variable, expected, message))
    return problems


def suggest_variable(variable: str, known: Iterable[str]) -> str | None:
    """Return the known or override variable that `variable` most likely meant, if any.

    Tries, in order: the same name in another case; an override written with single
    underscores (`P2S_PAYOUT_BATCH_SIZE`); a key name without its section (`P2S_DRY_RUN`);
    and finally the closest name by spelling.
    """
    overrides = _override_variables()
    candidates = sorted({*known, *overrides.values()})
    upper = variable.upper()

    for candidate in candidates:
        if candidate == upper:
            return candidate

    flattened = upper.replace("__", "_")
    for candidate in overrides.values():
        if candidate.replace("__", "_") == flattened:
            return candidate

    bare_name = upper[len(PREFIX) :].lower()
    by_leaf = [name for key, name in overrides.items() if key.rpartition(".")[2] == bare_name]
    if len(by_leaf) == 1:
        return by_leaf[0]

    matches = difflib.get_close_matches(upper, candidates, n=1, cutoff=0.8)
    return matches[0] if matches else None


def _override_variables() -> dict[str, str]:
    return {
        key: override_variable(key)
        for section, model in SECTION_MODELS.items()
        for key, _ in leaf_fields(model, section)
    }
