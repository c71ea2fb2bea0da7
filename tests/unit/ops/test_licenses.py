"""License policy of tools/licenses.py and the generated NOTICE."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[3]


def _load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pay2slay_licenses", ROOT / "tools/licenses.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


licenses = _load_tool()


@pytest.mark.parametrize(
    ("expression", "allowed"),
    [
        ("MIT", True),
        ("MIT-0", True),
        ("Apache-2.0 AND MIT", True),
        ("MIT OR Apache-2.0", True),
        ("MPL-2.0", True),
        ("GPL-3.0-only", False),
        ("AGPL-3.0-or-later", False),
        ("LGPL-2.1-or-later", False),
        ("MIT AND GPL-2.0-only", False),
        ("GPL-2.0-only OR MIT", True),
        ("(MIT OR GPL-3.0-only) AND BSD-3-Clause", True),
        ("(MIT AND GPL-3.0-only) OR LGPL-3.0-only", False),
        ("Apache-2.0 WITH LLVM-exception", True),
        ("UNKNOWN", False),
        ("", False),
        ("MIT AND", False),
        ("(MIT", False),
    ],
)
def test_expression_policy(expression: str, allowed: bool) -> None:
    assert licenses.expression_allowed(expression) is allowed


def test_runtime_dependencies_allowed() -> None:
    dependencies = licenses.runtime_dependencies()
    names = {dependency.name.lower() for dependency in dependencies}
    assert {"aiohttp", "discord.py", "sqlalchemy"} <= names
    assert "pytest" not in names
    assert "pay2slay" not in names
    rejected = [(d.name, d.license) for d in dependencies if not d.allowed]
    assert not rejected


def test_notice_lists_every_runtime_dependency() -> None:
    dependencies = licenses.runtime_dependencies()
    notice = (ROOT / "NOTICE").read_text(encoding="utf-8")
    assert notice == licenses.render_notice(dependencies), "NOTICE is stale: make supply-chain"
    for dependency in dependencies:
        assert f"{dependency.name} {dependency.version}\n  License: " in notice


def test_check_command_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert licenses.main(["check"]) == 0
    assert "license check passed" in capsys.readouterr().out


def test_check_command_fails_on_rejected(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(licenses.REVIEWED, "pyyaml", ("GPL-3.0-only", "test"))
    assert licenses.main(["check"]) == 1
    assert "PyYAML (GPL-3.0-only)" in capsys.readouterr().err
