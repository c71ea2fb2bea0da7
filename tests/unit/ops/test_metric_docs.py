"""The metrics table in docs/operations.md is generated from `Metrics` and kept current."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.observability.docs import (
    METRICS_BEGIN,
    METRICS_END,
    label_documentation,
    main,
    render_metric_table,
    replace_metric_table,
)
from core.observability.metrics import METRIC_NAMES

ROOT = Path(__file__).resolve().parents[3]
OPERATIONS = ROOT / "docs/operations.md"


def test_operations_table_is_current() -> None:
    text = OPERATIONS.read_text(encoding="utf-8")
    assert replace_metric_table(text, render_metric_table()) == text, (
        "docs/operations.md is stale: run python -m core.observability.docs docs/operations.md"
    )


def test_every_metric_has_a_row() -> None:
    table = render_metric_table()
    for name in METRIC_NAMES:
        assert f"| `{name}` |" in table, name


def test_undocumented_label_raises() -> None:
    with pytest.raises(KeyError, match="'shard' of pay2slay_payouts_total"):
        label_documentation("pay2slay_payouts_total", ["state", "shard"])


def test_replace_requires_markers() -> None:
    with pytest.raises(ValueError, match="no metrics table markers"):
        replace_metric_table("# Operations\n", "| table |\n")
    with pytest.raises(ValueError, match="no metrics table markers"):
        replace_metric_table(f"{METRICS_END}\n{METRICS_BEGIN}\n", "| table |\n")


def test_replace_keeps_surrounding_text() -> None:
    document = f"before\n{METRICS_BEGIN}\nold rows\n{METRICS_END}\nafter\n"
    updated = replace_metric_table(document, "| new |\n")
    assert updated == f"before\n{METRICS_BEGIN}\n\n| new |\n\n{METRICS_END}\nafter\n"


def test_main_check_and_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "operations.md"
    path.write_text(f"# Ops\n{METRICS_BEGIN}\nold\n{METRICS_END}\n", encoding="utf-8")

    assert main([str(path), "--check"]) == 1
    assert "stale" in capsys.readouterr().out
    assert main([str(path)]) == 0
    assert main([str(path), "--check"]) == 0
    assert "pay2slay_payouts_total" in path.read_text(encoding="utf-8")
