"""Message catalogs: complete translations, locale mapping, fallback and safe formatting."""

from __future__ import annotations

import re

import pytest
import structlog

from core.i18n import SUPPORTED_LOCALES, MessageCatalog, normalize_locale, placeholders

# Command names and options as the bot registers them.
COMMANDS: dict[str, tuple[str, ...]] = {
    "link-wallet": ("address",),
    "status": (),
    "payouts": ("page",),
    "leaderboard": ("period", "metric"),
    "notifications": ("enabled",),
    "reverify": ("member",),
    "payout-retry": ("payout",),
    "payouts-pause": ("reason",),
    "payouts-resume": (),
    "settle-now": (),
    "freeze": ("member", "reason"),
    "unfreeze": ("member",),
    "abuse-flags": ("status",),
    "abuse-resolve": ("flag", "action", "note"),
    "player-lookup": ("member",),
    "faucet-health": (),
}

SHARED_KEYS = [
    "errors.not_admin",
    "errors.guild_only",
    "errors.wrong_guild",
    "errors.cooldown",
    "errors.unexpected",
    "errors.service_unavailable",
    "errors.player_unknown",
    "errors.confirm_not_yours",
    "errors.confirm_expired",
    "confirm.yes",
    "confirm.no",
    "confirm.cancelled",
    "dry_run.banner",
]

# Discord rejects command and option descriptions and choice names above 100 characters.
DISCORD_DESCRIPTION_LIMIT = 100


@pytest.fixture(scope="module")
def catalog() -> MessageCatalog:
    return MessageCatalog.load(strict=True)


def test_supported_locales_load(catalog: MessageCatalog) -> None:
    assert catalog.locales == frozenset(SUPPORTED_LOCALES)


def test_translations_have_every_key(catalog: MessageCatalog) -> None:
    assert catalog.missing_keys() == {}


def test_translations_have_no_unknown_keys(catalog: MessageCatalog) -> None:
    assert catalog.extra_keys() == {}


def test_translations_keep_placeholders(catalog: MessageCatalog) -> None:
    assert catalog.placeholder_mismatches() == {}


def test_translations_differ_from_english(catalog: MessageCatalog) -> None:
    # Short labels may coincide ("ok", "Modo"), but most text must really be translated.
    english = {key: catalog.lookup(key, "en") for key in catalog.message_keys()}
    for locale in ("es", "pt-BR"):
        same = [
            key for key in catalog.message_keys() if catalog.lookup(key, locale) == english[key]
        ]
        assert len(same) < len(english) // 10, same


def test_missing_translation_is_reported() -> None:
    catalog = MessageCatalog(
        {"en": {"a": "A {x}", "b": "B"}, "es": {"a": "A {x}"}, "pt-BR": {"a": "A", "b": "B"}}
    )

    assert catalog.missing_keys() == {"es": {"b"}}
    assert catalog.placeholder_mismatches() == {"pt-BR": {"a"}}


def test_unknown_key_is_reported() -> None:
    catalog = MessageCatalog({"en": {"a": "A"}, "es": {"a": "A", "typo": "T"}})

    assert catalog.extra_keys() == {"es": {"typo"}}


@pytest.mark.parametrize(("command", "options"), COMMANDS.items())
def test_commands_described_everywhere(
    catalog: MessageCatalog, command: str, options: tuple[str, ...]
) -> None:
    keys = [f"command.{command}.description"] + [
        f"command.{command}.option.{option}" for option in options
    ]
    for locale in SUPPORTED_LOCALES:
        for key in keys:
            text = catalog.lookup(key, locale)
            assert text, f"{key} missing in {locale}"
            assert len(text) <= DISCORD_DESCRIPTION_LIMIT, f"{key} in {locale} is too long"


def test_no_command_keys_for_unknown_commands(catalog: MessageCatalog) -> None:
    names = {key.split(".")[1] for key in catalog.message_keys() if key.startswith("command.")}
    assert names == set(COMMANDS)


def test_choice_names_fit_discord(catalog: MessageCatalog) -> None:
    for locale in SUPPORTED_LOCALES:
        for key in catalog.message_keys(locale):
            if key.startswith("choice."):
                text = catalog.lookup(key, locale)
                assert text is not None
                assert len(text) <= DISCORD_DESCRIPTION_LIMIT


@pytest.mark.parametrize("key", SHARED_KEYS)
def test_shared_texts_exist(catalog: MessageCatalog, key: str) -> None:
    assert catalog.has(key)


def test_placeholders_are_plain_names(catalog: MessageCatalog) -> None:
    assert placeholders(catalog.text("errors.cooldown", "en", seconds=1)) == frozenset()
    assert catalog.lookup("errors.cooldown", "en") is not None
    assert placeholders(catalog.lookup("errors.cooldown", "en") or "") == {"seconds"}
    assert placeholders(catalog.lookup("errors.unexpected", "es") or "") == {"incident_id"}


@pytest.mark.parametrize("template", ["{a.b}", "{0}", "{x!r}", "{x:>5}", "{}"])
def test_unsafe_placeholders_rejected(template: str) -> None:
    with pytest.raises(ValueError, match="not a plain name"):
        MessageCatalog({"en": {"key": template}})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("en-US", "en"),
        ("en-GB", "en"),
        ("en", "en"),
        ("es-ES", "es"),
        ("es-419", "es"),
        ("pt-BR", "pt-BR"),
        ("pt_br", "pt-BR"),
        ("PT-br", "pt-BR"),
        ("pt-PT", "pt-BR"),
        ("fr", "en"),
        ("zh-TW", "en"),
        ("", "en"),
        (None, "en"),
    ],
)
def test_normalize_locale(value: str | None, expected: str) -> None:
    assert normalize_locale(value) == expected


def test_normalize_locale_with_other_default() -> None:
    assert normalize_locale("de", "pt-BR") == "pt-BR"
    assert normalize_locale("es-419", "pt-BR") == "es"


def test_text_in_discord_locales(catalog: MessageCatalog) -> None:
    assert catalog.text("errors.cooldown", "es-419", seconds=5) == (
        "Usaste este comando hace muy poco. Vuelve a intentarlo en 5 segundos."
    )
    assert "5 segundos" in catalog.text("errors.cooldown", "pt-BR", seconds=5)
    assert "5 seconds" in catalog.text("errors.cooldown", "en-GB", seconds=5)
    assert "5 seconds" in catalog.text("errors.cooldown", "ja", seconds=5)


def test_default_locale_applies_without_locale() -> None:
    catalog = MessageCatalog.load("pt-BR", strict=True)

    assert catalog.default_locale == "pt-BR"
    assert catalog.text("confirm.cancelled") == "Cancelado. Nada foi alterado."
    assert catalog.text("confirm.cancelled", "fr") == "Cancelado. Nada foi alterado."
    assert catalog.text("confirm.cancelled", "es") == "Cancelado. No se cambió nada."


def test_fallback_to_default_then_english() -> None:
    catalog = MessageCatalog(
        {
            "en": {"both": "en both", "only_en": "en only"},
            "es": {"both": "es both"},
            "pt-BR": {},
        },
        "es",
    )

    assert catalog.text("both", "pt-BR") == "es both"
    assert catalog.text("only_en", "pt-BR") == "en only"


def test_strict_missing_key_raises() -> None:
    catalog = MessageCatalog({"en": {}}, strict=True)

    with pytest.raises(KeyError):
        catalog.text("nope")


def test_lenient_missing_key_returns_key() -> None:
    catalog = MessageCatalog({"en": {}})

    with structlog.testing.capture_logs() as logs:
        assert catalog.text("nope", "es") == "nope"

    assert logs[0]["event"] == "catalog_key_missing"
    assert logs[0]["log_level"] == "error"


def test_strict_missing_parameter_raises() -> None:
    catalog = MessageCatalog({"en": {"k": "wait {seconds} s"}}, strict=True)

    with pytest.raises(KeyError):
        catalog.text("k")


def test_lenient_missing_parameter_keeps_placeholder() -> None:
    catalog = MessageCatalog({"en": {"k": "{amount} for {kills} kills"}})

    with structlog.testing.capture_logs() as logs:
        assert catalog.text("k", kills=3) == "{amount} for 3 kills"

    assert logs[0]["event"] == "catalog_placeholder_missing"


def test_parameters_are_not_formatted_again() -> None:
    catalog = MessageCatalog({"en": {"k": "reason: {reason}"}}, strict=True)

    assert catalog.text("k", reason="{__class__}") == "reason: {__class__}"


def test_lookup_has_no_fallback(catalog: MessageCatalog) -> None:
    assert catalog.lookup("confirm.yes", "es") == "Confirmar"
    assert catalog.lookup("confirm.yes", "fr") is None
    assert catalog.lookup("no.such.key", "en") is None


def test_catalog_texts_have_no_markdown_or_mentions(catalog: MessageCatalog) -> None:
    # Renderers add all formatting; catalog text must not ping or format by itself. The
    # address prefix "ban_" has a single underscore, which Discord leaves as it is.
    for locale in SUPPORTED_LOCALES:
        for key in catalog.message_keys(locale):
            text = re.sub(r"\{\w+\}|ban_", "", catalog.lookup(key, locale) or "")
            assert "@" not in text, key
            assert not re.search(r"[*_~`|<>]", text), key
