"""docs/configuration.md matches the models and the shipped files."""

from __future__ import annotations

from pathlib import Path

from core.config.docs import render_configuration_markdown
from core.config.overrides import override_variable
from core.config.schema import SECTION_MODELS, field_expected, leaf_fields
from core.config.secrets import SecretSettings


def test_configuration_docs_up_to_date(shipped_config_dir: Path) -> None:
    docs_file = shipped_config_dir.parent / "docs" / "configuration.md"
    expected = render_configuration_markdown(shipped_config_dir)
    assert docs_file.read_text(encoding="utf-8") == expected, (
        "docs/configuration.md is stale; regenerate it from the repository root with "
        "`python -m core.config.docs > docs/configuration.md`"
    )


def test_every_key_documented(shipped_config_dir: Path) -> None:
    markdown = render_configuration_markdown(shipped_config_dir)
    for section, model in SECTION_MODELS.items():
        for key, info in leaf_fields(model, section):
            assert info.description, key
            assert field_expected(info), key
            assert f"`{key.partition('.')[2]}`" in markdown
            assert f"`{override_variable(key)}`" in markdown
    for name, info in SecretSettings.model_fields.items():
        assert info.description, name
        assert f"`P2S_{name.upper()}`" in markdown
