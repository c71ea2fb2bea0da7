"""YAML reading for configuration files: exact numbers, YAML 1.2 scalars, no duplicate keys.

The reader also bounds what a hostile or broken file can cost: anchors and aliases are
rejected (so a few hundred bytes cannot expand into gigabytes, and a value cannot contain
itself), files are limited to `MAX_FILE_BYTES`, and collections to `MAX_NESTING_DEPTH` levels,
which keeps PyYAML's recursive composer far from Python's recursion limit.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.events import AliasEvent, CollectionStartEvent
from yaml.nodes import MappingNode, Node, ScalarNode

from core.config.errors import ConfigError, ConfigProblem

BOOL_TAG = "tag:yaml.org,2002:bool"
INT_TAG = "tag:yaml.org,2002:int"
FLOAT_TAG = "tag:yaml.org,2002:float"
MERGE_TAG = "tag:yaml.org,2002:merge"

# The shipped files are a few kilobytes deep and four levels deep at most.
MAX_FILE_BYTES = 1024 * 1024
MAX_NESTING_DEPTH = 32

# PyYAML follows YAML 1.1, where `no` is false, `0755` is octal, `1:30` is 90 and `2024-01-01`
# is a date. These tags get YAML 1.2 core rules instead, and the `=` value tag is dropped.
_REPLACED_TAGS = {
    BOOL_TAG,
    INT_TAG,
    FLOAT_TAG,
    "tag:yaml.org,2002:timestamp",
    "tag:yaml.org,2002:value",
}
_BOOL_PATTERN = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT_PATTERN = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT_PATTERN = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_MAX_INT_TEXT_LENGTH = 100
_SPECIAL_FLOATS = {".inf": "Infinity", "+.inf": "Infinity", "-.inf": "-Infinity", ".nan": "NaN"}


class YamlLimitError(yaml.YAMLError):
    """The text uses a YAML feature that configuration rejects, or exceeds a size limit."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigLoader(yaml.SafeLoader):
    """Safe YAML loader that reads floats as `Decimal` from their text, never as binary floats.

    Scalars follow the YAML 1.2 core schema (only `true`/`false` are booleans, a leading zero
    is still decimal, no dates), and a key repeated in one mapping is an error instead of the
    last one silently winning. Anchors, aliases and collections nested deeper than
    `MAX_NESTING_DEPTH` raise `YamlLimitError` while the document is composed.
    """

    _depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        line = event.start_mark.line + 1 if event.start_mark is not None else 0
        if isinstance(event, AliasEvent) or getattr(event, "anchor", None) is not None:
            raise YamlLimitError(f"anchors and aliases are not supported (line {line})")
        if not isinstance(event, CollectionStartEvent):
            return super().compose_node(parent, index)

        if self._depth >= MAX_NESTING_DEPTH:
            raise YamlLimitError(
                f"nested too deeply (more than {MAX_NESTING_DEPTH} levels, line {line})"
            )
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == MERGE_TAG:
                continue
            if key_node.value in seen:
                raise ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"found duplicate key {key_node.value!r}",
                    key_node.start_mark,
                )
            seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


def _construct_bool(loader: ConfigLoader, node: Node) -> bool:
    text = str(loader.construct_scalar(node))  # type: ignore[arg-type]
    if not _BOOL_PATTERN.match(text):
        raise ConstructorError(None, None, "a boolean must be true or false", node.start_mark)
    return text.lower() == "true"


def _construct_int(loader: ConfigLoader, node: Node) -> int:
    text = str(loader.construct_scalar(node))  # type: ignore[arg-type]
    if not _INT_PATTERN.match(text):
        raise ConstructorError(None, None, "not a valid integer", node.start_mark)
    if len(text) > _MAX_INT_TEXT_LENGTH:
        # int() raises ValueError past 4300 digits; no configuration key takes such a number.
        raise ConstructorError(None, None, "the integer has too many digits", node.start_mark)
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text, 10)


def _construct_decimal(loader: ConfigLoader, node: Node) -> Decimal:
    text = str(loader.construct_scalar(node))  # type: ignore[arg-type]
    special = _SPECIAL_FLOATS.get(text.lower())
    if special is not None:
        return Decimal(special)
    try:
        return Decimal(text)
    except InvalidOperation:
        raise ConstructorError(None, None, "not a valid number", node.start_mark) from None


ConfigLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _REPLACED_TAGS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
ConfigLoader.add_implicit_resolver(BOOL_TAG, _BOOL_PATTERN, list("tTfF"))
ConfigLoader.add_implicit_resolver(INT_TAG, _INT_PATTERN, list("-+0123456789"))
ConfigLoader.add_implicit_resolver(FLOAT_TAG, _FLOAT_PATTERN, list("-+.0123456789"))
ConfigLoader.add_constructor(BOOL_TAG, _construct_bool)
ConfigLoader.add_constructor(INT_TAG, _construct_int)
ConfigLoader.add_constructor(FLOAT_TAG, _construct_decimal)


def parse_yaml(text: str) -> Any:
    """Parse one YAML document with `ConfigLoader`; raises `yaml.YAMLError` when invalid.

    `YamlLimitError`, a subclass, reports anchors, aliases and too deep nesting, also when
    Python's recursion limit is reached first.
    """
    loader = ConfigLoader(text)
    try:
        return loader.get_single_data()
    except RecursionError:
        raise YamlLimitError("nested too deeply") from None
    finally:
        loader.dispose()


def read_yaml_file(path: Path, section: str) -> dict[str, Any]:
    """Read the mapping in one configuration file; raises `ConfigError` naming the file."""
    expected = "a readable UTF-8 YAML file that contains a mapping of keys to values"

    def fail(message: str) -> ConfigError:
        return ConfigError([ConfigProblem(section, str(path), expected, message)])

    try:
        # One byte past the limit tells a file at the limit from a larger one, without
        # reading all of a huge file or an endless device.
        with path.open("rb") as file:
            content = file.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise fail("file not found") from None
    except OSError as exc:
        raise fail(f"cannot read the file ({exc.strerror or type(exc).__name__})") from None
    if len(content) > MAX_FILE_BYTES:
        raise fail(f"the file is larger than {MAX_FILE_BYTES // 1024 // 1024} MiB")
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        raise fail("the file is not UTF-8 text") from None

    try:
        data = parse_yaml(text)
    except YamlLimitError as exc:
        raise fail(f"invalid YAML: {exc.message}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise fail(f"invalid YAML{where}: {exc.problem or 'unreadable document'}") from None
    except yaml.YAMLError:
        raise fail("invalid YAML") from None

    if data is None:
        return {}
    if not isinstance(data, dict):
        raise fail(f"the file contains a {_yaml_kind(data)} instead of a mapping")
    return data


def _yaml_kind(value: object) -> str:
    if isinstance(value, list):
        return "list"
    return "single value"
