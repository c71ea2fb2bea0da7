"""The command translator: catalog text by key for the Discord locales that have a catalog."""

from __future__ import annotations

from unittest.mock import MagicMock

import discord
import pytest
from discord import app_commands

from bot.translator import CatalogTranslator
from cogs.common import command_text
from core.i18n import MessageCatalog

KEY = "command.status.description"


@pytest.fixture
def catalog() -> MessageCatalog:
    return MessageCatalog.load(strict=True)


@pytest.fixture
def translator(catalog: MessageCatalog) -> CatalogTranslator:
    return CatalogTranslator(catalog)


@pytest.mark.parametrize(
    ("locale", "catalog_locale"),
    [
        (discord.Locale.american_english, "en"),
        (discord.Locale.british_english, "en"),
        (discord.Locale.spain_spanish, "es"),
        (discord.Locale.latin_american_spanish, "es"),
        (discord.Locale.brazil_portuguese, "pt-BR"),
    ],
)
async def test_translates_by_key(
    translator: CatalogTranslator,
    catalog: MessageCatalog,
    locale: discord.Locale,
    catalog_locale: str,
) -> None:
    text = await translator.translate(command_text(KEY, "English"), locale, MagicMock())

    assert text == catalog.lookup(KEY, catalog_locale)


async def test_locale_without_catalog(translator: CatalogTranslator) -> None:
    text = await translator.translate(
        command_text(KEY, "English"), discord.Locale.german, MagicMock()
    )

    assert text is None


async def test_text_without_key(translator: CatalogTranslator) -> None:
    text = await translator.translate(
        app_commands.locale_str("status"), discord.Locale.spain_spanish, MagicMock()
    )

    assert text is None


async def test_unknown_key(translator: CatalogTranslator) -> None:
    text = await translator.translate(
        command_text("command.nothing.description", "x"), discord.Locale.spain_spanish, MagicMock()
    )

    assert text is None
