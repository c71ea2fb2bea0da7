"""discord.py's command translator over the message catalogs.

Every command and option description is a `locale_str` whose `key` extra names its catalog
entry (`command.<name>.description`, `command.<name>.option.<option>`). When the tree is
synced, Discord receives the text of each catalog locale for the Discord locales that map to
it: en-US and en-GB get English, es-ES and es-419 Spanish, pt-BR Brazilian Portuguese.
Command and option names are never translated, so admins and players type the same names.
"""

from __future__ import annotations

import discord
from discord import app_commands

from cogs.common import TEXT_KEY
from core.i18n import MessageCatalog, normalize_locale


class CatalogTranslator(app_commands.Translator):
    """Look up command descriptions in the catalogs by the `key` of each `locale_str`."""

    def __init__(self, catalog: MessageCatalog) -> None:
        self._catalog = catalog

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        """Return the catalog text for `string` in `locale`, or None when there is none."""
        key = string.extras.get(TEXT_KEY)
        if not isinstance(key, str):
            return None
        catalog_locale = normalize_locale(locale.value, default="")
        if not catalog_locale:
            return None
        return self._catalog.lookup(key, catalog_locale)
