"""Message catalogs: the text players and admins read, in every supported language.

Each locale is one JSON object in `core/i18n/locales/<locale>.json` that maps a dotted key
(`status.title`, `command.status.description`) to a template with `str.format`-style named
placeholders such as `{amount}`. English is the reference: every other catalog has the same
keys with the same placeholders, which the tests check.
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from importlib import resources
from types import MappingProxyType

import structlog

log = structlog.get_logger(__name__)

REFERENCE_LOCALE = "en"
SUPPORTED_LOCALES = ("en", "es", "pt-BR")

_LOCALE_PACKAGE = "core.i18n.locales"
_FORMATTER = string.Formatter()
_NO_TEMPLATES: Mapping[str, str] = MappingProxyType({})

# Language subtags that have a catalog, with the locale each one maps to. Discord sends
# region variants such as en-US, en-GB, es-ES and es-419; Portuguese from any region gets
# the Brazilian catalog, the only Portuguese one.
_LANGUAGE_TO_LOCALE = {"en": "en", "es": "es", "pt": "pt-BR"}


def normalize_locale(value: str | None, default: str = REFERENCE_LOCALE) -> str:
    """Map a Discord or BCP 47 locale to a catalog locale, or `default` when none matches.

    "en-US" and "en-GB" become "en", "es-ES" and "es-419" become "es", "pt-BR" stays
    "pt-BR". Case and `_` versus `-` do not matter.
    """
    if not value:
        return default
    language = value.strip().replace("_", "-").split("-", 1)[0].lower()
    return _LANGUAGE_TO_LOCALE.get(language, default)


class _KeepMissing(dict[str, object]):
    """Format arguments that leave an unknown placeholder as written instead of raising."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def placeholders(template: str) -> frozenset[str]:
    """Return the names of the placeholders in `template`.

    Raises ValueError for a placeholder that is not a plain name (attribute access,
    indexing, a conversion or a format spec), because catalog text must not reach into the
    objects passed to it.
    """
    names: set[str] = set()
    for _literal, field, format_spec, conversion in _FORMATTER.parse(template):
        if field is None:
            continue
        if not field.isidentifier() or format_spec or conversion:
            raise ValueError(f"placeholder {{{field}}} is not a plain name in {template!r}")
        names.add(field)
    return frozenset(names)


class MessageCatalog:
    """Templates for every locale, looked up with fallback to the default locale, then English.

    With `strict` set, a missing key or a missing placeholder value raises KeyError (tests use
    it). Without it, a missing key returns the key itself and a missing value leaves its
    placeholder as written. Both are logged at error level, because they are bugs in the
    catalogs or in the caller, and a command still gets a reply.
    """

    def __init__(
        self,
        messages: Mapping[str, Mapping[str, str]],
        default_locale: str = REFERENCE_LOCALE,
        *,
        strict: bool = False,
    ) -> None:
        if REFERENCE_LOCALE not in messages:
            raise ValueError(f"the {REFERENCE_LOCALE!r} catalog is required")
        for locale, templates in messages.items():
            for key, template in templates.items():
                try:
                    placeholders(template)
                except ValueError as error:
                    raise ValueError(f"catalog {locale}, key {key}: {error}") from None

        self._messages = MappingProxyType(
            {locale: MappingProxyType(dict(templates)) for locale, templates in messages.items()}
        )
        self._default_locale = normalize_locale(default_locale)
        self._strict = strict

    @classmethod
    def load(
        cls, default_locale: str = REFERENCE_LOCALE, *, strict: bool = False
    ) -> MessageCatalog:
        """Read the catalogs packaged in `core/i18n/locales`."""
        messages: dict[str, dict[str, str]] = {}
        for locale in SUPPORTED_LOCALES:
            resource = resources.files(_LOCALE_PACKAGE).joinpath(f"{locale}.json")
            data = json.loads(resource.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or not all(
                isinstance(key, str) and isinstance(value, str) for key, value in data.items()
            ):
                raise ValueError(f"catalog {locale}.json must be an object of strings")
            messages[locale] = data
        return cls(messages, default_locale, strict=strict)

    @property
    def locales(self) -> frozenset[str]:
        """Locales that have a catalog."""
        return frozenset(self._messages)

    @property
    def default_locale(self) -> str:
        """Locale used when the requested one has no catalog or lacks a key."""
        return self._default_locale

    @property
    def strict(self) -> bool:
        """Whether a missing key or placeholder value raises instead of being logged."""
        return self._strict

    def message_keys(self, locale: str = REFERENCE_LOCALE) -> frozenset[str]:
        """Return the keys of one locale's catalog (empty for an unknown locale)."""
        return frozenset(self._messages.get(locale, _NO_TEMPLATES))

    def normalize(self, value: str | None) -> str:
        """Map a Discord locale to a catalog locale, falling back to this catalog's default."""
        return normalize_locale(value, self._default_locale)

    def lookup(self, key: str, locale: str) -> str | None:
        """Return the template for `key` in exactly `locale`, without fallback or formatting.

        For Discord's command translator, which must return None when a locale has no text.
        """
        return self._messages.get(locale, _NO_TEMPLATES).get(key)

    def has(self, key: str) -> bool:
        """Return whether the reference catalog defines `key`."""
        return key in self._messages[REFERENCE_LOCALE]

    def text(self, key: str, locale: str | None = None, /, **params: object) -> str:
        """Return the text for `key` in `locale`, formatted with `params`.

        `locale` may be a Discord locale such as "es-419"; None means the default locale.
        Amounts must be passed already formatted, as text.
        """
        resolved = self.normalize(locale)
        template: str | None = None
        for candidate in (resolved, self._default_locale, REFERENCE_LOCALE):
            template = self._messages.get(candidate, _NO_TEMPLATES).get(key)
            if template is not None:
                break

        if template is None:
            if self._strict:
                raise KeyError(key)
            log.error("catalog_key_missing", key=key, locale=resolved)
            return key

        try:
            return template.format_map(params)
        except KeyError as error:
            if self._strict:
                raise
            log.error(
                "catalog_placeholder_missing", key=key, locale=resolved, placeholder=str(error)
            )
            return template.format_map(_KeepMissing(params))

    def missing_keys(self) -> dict[str, set[str]]:
        """Return, per locale, the reference keys its catalog lacks; complete ones are left out."""
        reference = set(self._messages[REFERENCE_LOCALE])
        missing: dict[str, set[str]] = {}
        for locale, templates in self._messages.items():
            absent = reference - set(templates)
            if absent:
                missing[locale] = absent
        return missing

    def extra_keys(self) -> dict[str, set[str]]:
        """Return, per locale, keys its catalog has and the reference catalog lacks."""
        reference = set(self._messages[REFERENCE_LOCALE])
        extra: dict[str, set[str]] = {}
        for locale, templates in self._messages.items():
            unknown = set(templates) - reference
            if unknown:
                extra[locale] = unknown
        return extra

    def placeholder_mismatches(self) -> dict[str, set[str]]:
        """Return, per locale, the keys whose placeholders differ from the reference text."""
        reference = self._messages[REFERENCE_LOCALE]
        mismatches: dict[str, set[str]] = {}
        for locale, templates in self._messages.items():
            differing = {
                key
                for key, template in templates.items()
                if key in reference and placeholders(template) != placeholders(reference[key])
            }
            if differing:
                mismatches[locale] = differing
        return mismatches
