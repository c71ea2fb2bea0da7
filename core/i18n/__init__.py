"""Translated text for players and admins: message catalogs and Discord locale mapping."""

from core.i18n.catalog import (
    REFERENCE_LOCALE,
    SUPPORTED_LOCALES,
    MessageCatalog,
    normalize_locale,
    placeholders,
)

__all__ = [
    "REFERENCE_LOCALE",
    "SUPPORTED_LOCALES",
    "MessageCatalog",
    "normalize_locale",
    "placeholders",
]
