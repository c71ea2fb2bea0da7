"""Limits of the YAML reader: no anchors or aliases, bounded file size and nesting depth."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

from core.config import ConfigError, load_settings
from core.config.yaml_source import (
    MAX_FILE_BYTES,
    MAX_NESTING_DEPTH,
    YamlLimitError,
    parse_yaml,
)

if TYPE_CHECKING:
    from tests.unit.config.conftest import EditConfig, LoadProblems

# Ten levels of nine aliases each: about 3.5 billion strings once expanded.
LAUGHS = "a: &a [" + ", ".join(['"lol"'] * 9) + "]\n"
BILLION_LAUGHS = LAUGHS + "".join(
    f"{chr(98 + level)}: &{chr(98 + level)} [{', '.join([f'*{chr(97 + level)}'] * 9)}]\n"
    for level in range(9)
)


def test_alias_rejected() -> None:
    with pytest.raises(YamlLimitError, match="anchors and aliases are not supported"):
        parse_yaml("a: &one 1\nb: *one")


def test_anchor_without_alias_rejected() -> None:
    with pytest.raises(YamlLimitError, match="anchors and aliases are not supported"):
        parse_yaml("a: &one 1")


def test_self_referencing_alias_rejected() -> None:
    with pytest.raises(YamlLimitError, match="anchors and aliases are not supported"):
        parse_yaml("x: &a [*a]")


def test_billion_laughs_rejected() -> None:
    with pytest.raises(YamlLimitError, match="anchors and aliases are not supported"):
        parse_yaml(BILLION_LAUGHS)


def test_nesting_at_limit_accepted() -> None:
    # The top-level mapping is one level, so the list can be nested one level less.
    depth = MAX_NESTING_DEPTH - 1
    data = parse_yaml("a: " + "[" * depth + "]" * depth)

    nested = data["a"]
    levels = 1
    while nested:
        nested = nested[0]
        levels += 1
    assert levels == depth


@pytest.mark.parametrize("depth", [MAX_NESTING_DEPTH + 1, 1000, 3000, 100_000])
def test_deep_nesting_rejected(depth: int) -> None:
    with pytest.raises(YamlLimitError, match="nested too deeply"):
        parse_yaml("[" * depth + "]" * depth)


def test_huge_integer_rejected() -> None:
    with pytest.raises(yaml.YAMLError, match="too many digits"):
        parse_yaml("a: " + "9" * 5000)


def test_alias_in_file_is_problem(edit_config: EditConfig, load_problems: LoadProblems) -> None:
    edit_config("product.yaml", 'app_name: "Pay2Slay Faucet"', "app_name: &name Faucet")
    edit_config("product.yaml", 'org_name: "Example Org"', "org_name: *name")

    [problem] = load_problems()

    assert problem.key == "product"
    assert problem.message == "invalid YAML: anchors and aliases are not supported (line 3)"


def test_billion_laughs_file_is_problem(config_dir: Path, load_problems: LoadProblems) -> None:
    path = config_dir / "product.yaml"
    path.write_text(path.read_text(encoding="utf-8") + BILLION_LAUGHS, encoding="utf-8")

    [problem] = load_problems()

    assert problem.key == "product"
    assert "anchors and aliases are not supported" in problem.message


@pytest.mark.parametrize("depth", [1000, 3000])
def test_deep_file_is_problem(config_dir: Path, load_problems: LoadProblems, depth: int) -> None:
    (config_dir / "payout.yaml").write_text("batch_size: " + "[" * depth, encoding="utf-8")

    [problem] = load_problems()

    assert problem.key == "payout"
    assert problem.message.startswith("invalid YAML: nested too deeply")


def test_large_file_is_problem(config_dir: Path, load_problems: LoadProblems) -> None:
    path = config_dir / "product.yaml"
    padding = "#" * 100 + "\n"
    text = path.read_text(encoding="utf-8")
    path.write_text(text + padding * (MAX_FILE_BYTES // len(padding) + 1), encoding="utf-8")

    [problem] = load_problems()

    assert problem.key == "product"
    assert problem.message == "the file is larger than 1 MiB"


def test_file_at_size_limit_accepted(config_dir: Path) -> None:
    path = config_dir / "product.yaml"
    text = path.read_text(encoding="utf-8")
    filler = "#" * (MAX_FILE_BYTES - len(text.encode()) - 1)
    path.write_text(text + filler + "\n", encoding="utf-8")
    assert path.stat().st_size == MAX_FILE_BYTES

    settings = load_settings(config_dir, environ={})

    assert settings.product.app_name == "Pay2Slay Faucet"


@pytest.mark.parametrize("depth", [1000, 3000])
def test_deep_override_is_problem(load_problems: LoadProblems, depth: int) -> None:
    variable = "P2S_PRODUCT__APP_NAME"

    [problem] = load_problems({variable: "[" * depth + "]" * depth})

    assert problem.key == "product.app_name"
    assert problem.source == variable
    assert problem.message.startswith("invalid YAML: nested too deeply")


def test_alias_override_is_problem(load_problems: LoadProblems) -> None:
    [problem] = load_problems({"P2S_INTEGRATIONS__OAUTH_SCOPES": "[&a identify, *a]"})

    assert problem.key == "integrations.oauth_scopes"
    assert "anchors and aliases are not supported" in problem.message


def test_recursion_error_becomes_problem(config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def recurse(*args: object) -> None:
        raise RecursionError

    monkeypatch.setattr("core.config.loader.apply_overrides", recurse)

    with pytest.raises(ConfigError) as caught:
        load_settings(config_dir, environ={})

    [problem] = caught.value.problems
    assert problem.message == "invalid YAML: nested too deeply"
    assert problem.source == str(config_dir)
