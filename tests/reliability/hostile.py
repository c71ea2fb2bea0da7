"""Hypothesis strategies for hostile input: random JSON, mutated real replies, odd text."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**200), max_value=2**200)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=80)
)
JSON_VALUES: st.SearchStrategy[Any] = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=40,
)

# Text meant to break parsers and renderers: control characters, mentions, bidirectional
# marks, very long runs, surrogate-free astral characters and markdown.
HOSTILE_FRAGMENTS = (
    "@everyone",
    "@here",
    "<@&400000000000000010>",
    "<@400000000000000011>",
    "<#900000000000000002>",
    "\x00",
    "\x1b[31m",
    "\r\n",
    "\u202e",
    "\u200b",
    "`" * 3,
    "**bold**",
    "||spoiler||",
    "ban_",
    "%00",
    "${YUNITE_API_KEY}",
    "🙂" * 5,
    "A" * 4000,
)
HOSTILE_TEXT = st.lists(
    st.sampled_from(HOSTILE_FRAGMENTS) | st.text(max_size=40), min_size=1, max_size=6
).map("".join)


def load_fixture(relative: str) -> Any:
    """Read a JSON reply from tests/fixtures, without the `_request` note it may carry."""
    value = json.loads((FIXTURES / relative).read_text(encoding="utf-8"))
    if isinstance(value, dict):
        value.pop("_request", None)
    return value


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found.extend(_paths(child, (*prefix, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.extend(_paths(child, (*prefix, index)))
    return found


def _parent_of(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path[:-1]:
        value = value[step]
    return value


@st.composite
def mutated(draw: st.DrawFn, base: Any, max_changes: int = 3) -> Any:
    """Draw a copy of `base` with one to `max_changes` values replaced, removed or retyped."""
    value = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, max_changes))):
        paths = _paths(value)
        path = draw(st.sampled_from(paths))
        replacement = draw(JSON_VALUES)
        if not path:
            value = replacement
            continue
        parent = _parent_of(value, path)
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = replacement
    return value


def json_bodies(base: Any) -> st.SearchStrategy[bytes]:
    """Draw reply bodies: mutated real replies, random JSON, and bytes that are not JSON."""
    as_json = st.one_of(mutated(base), JSON_VALUES).map(lambda value: json.dumps(value).encode())
    return st.one_of(as_json, as_json, st.binary(max_size=300))


HTTP_STATUSES = st.sampled_from([200, 200, 200, 201, 204, 400, 401, 403, 404, 429, 500, 502, 503])
