"""YAML reading: exact decimals, YAML 1.2 scalars and duplicate keys."""

from __future__ import annotations

from decimal import Decimal

import pytest
import yaml

from core.config.yaml_source import parse_yaml


def test_float_text_becomes_exact_decimal() -> None:
    data = parse_yaml("a: 2.1\nb: 0.1\nc: 1.000000000000000000000000000001\nd: 1e3")
    assert data["a"] == Decimal("2.1")
    assert data["b"] == Decimal("0.1")
    assert data["c"] == Decimal("1.000000000000000000000000000001")
    assert data["d"] == Decimal(1000)
    assert not any(isinstance(value, float) for value in data.values())


def test_special_floats_become_decimal() -> None:
    data = parse_yaml("a: .inf\nb: -.inf\nc: .nan")
    assert data["a"] == Decimal("Infinity")
    assert data["b"] == Decimal("-Infinity")
    assert data["c"].is_nan()


def test_yaml_12_integers() -> None:
    data = parse_yaml("a: 0755\nb: 0o17\nc: 0x1f\nd: -12\ne: 1:30")
    assert data == {"a": 755, "b": 15, "c": 31, "d": -12, "e": "1:30"}


def test_only_true_and_false_are_booleans() -> None:
    data = parse_yaml("a: true\nb: False\nc: no\nd: on\ne: yes")
    assert data == {"a": True, "b": False, "c": "no", "d": "on", "e": "yes"}


def test_dates_stay_text() -> None:
    assert parse_yaml("a: 2024-01-01") == {"a": "2024-01-01"}


def test_quoted_number_stays_text() -> None:
    assert parse_yaml('a: "2.1"') == {"a": "2.1"}


def test_duplicate_key_rejected() -> None:
    with pytest.raises(yaml.MarkedYAMLError, match="found duplicate key 'a'"):
        parse_yaml("a: 1\nb:\n  a: 2\na: 3")


def test_merge_key_without_alias() -> None:
    data = parse_yaml("child:\n  <<: {a: 1, b: 2}\n  a: 3")
    assert data["child"] == {"a": 3, "b": 2}


def test_explicit_bool_tag_checked() -> None:
    with pytest.raises(yaml.MarkedYAMLError, match="a boolean must be true or false"):
        parse_yaml("a: !!bool yes")


def test_unsafe_tags_rejected() -> None:
    with pytest.raises(yaml.YAMLError):
        parse_yaml("a: !!python/object/apply:os.system ['true']")
