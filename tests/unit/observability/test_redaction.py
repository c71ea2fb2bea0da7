from __future__ import annotations

import logging
from typing import Any

import pytest
import structlog

from core.observability import MASK, SecretRedactor, is_sensitive_key
from core.observability.logging import _RootHandler
from tests.unit.observability.conftest import LogOutput

log = structlog.get_logger("core.integrations.example")

BOT_TOKEN = "MTA4NzY1.GxYzAb.bot-token-value-0123456789"
SEED = "9F0E444C69F77A49BD0BE89DB92C38FE713E0963165CCA12FAF5712D7657120F"
API_KEY = "fortnite-api-key-7c1e"


class Credentials:
    def __init__(self, key: str) -> None:
        self.key = key

    def __repr__(self) -> str:
        return f"Credentials(key={self.key!r})"


def redact(redactor: SecretRedactor, **event: Any) -> dict[str, Any]:
    return dict(redactor(None, "info", dict(event)))


def configure(log_output: LogOutput) -> SecretRedactor:
    return log_output.configure("json", secrets=(BOT_TOKEN, SEED, API_KEY))


def assert_no_secret(text: str) -> None:
    for secret in (BOT_TOKEN, SEED, API_KEY):
        assert secret not in text


def test_event_text_redacted(log_output: LogOutput) -> None:
    configure(log_output)

    # The secret is part of the event text on purpose.
    log.info(f"login failed for token {BOT_TOKEN}")  # noqa: G004

    assert_no_secret(log_output.text)
    assert log_output.records()[0]["event"] == f"login failed for token {MASK}"


def test_positional_arguments_redacted(log_output: LogOutput) -> None:
    configure(log_output)

    log.info("request to %s failed", f"https://127.0.0.1/?key={API_KEY}")

    assert_no_secret(log_output.text)
    assert log_output.records()[0]["event"] == f"request to https://127.0.0.1/?key={MASK} failed"


def test_nested_fields_redacted(log_output: LogOutput) -> None:
    configure(log_output)

    log.info(
        "node_request_failed",
        request={"action": "process", "params": [{"note": f"seed {SEED}"}, ("x", API_KEY)]},
        peers={f"peer-{BOT_TOKEN}"},
        raw=f"prefix {API_KEY}".encode(),
    )

    assert_no_secret(log_output.text)
    (record,) = log_output.events("node_request_failed")
    assert record["request"]["action"] == "process"
    assert record["request"]["params"][0]["note"] == f"seed {MASK}"
    assert record["request"]["params"][1] == ["x", MASK]
    assert record["peers"] == [f"peer-{MASK}"]
    assert record["raw"] == f"prefix {MASK}"


def test_object_repr_redacted(log_output: LogOutput) -> None:
    configure(log_output)

    log.info("client_created", credentials=Credentials(API_KEY), count=3)

    assert_no_secret(log_output.text)
    (record,) = log_output.events("client_created")
    assert record["credentials"] == f"Credentials(key='{MASK}')"
    assert record["count"] == 3


def test_exception_message_and_traceback_redacted(log_output: LogOutput) -> None:
    configure(log_output)

    try:
        raise RuntimeError("node rejected MTA4NzY1.GxYzAb.bot-token-value-0123456789")
    except RuntimeError as error:
        log.exception("payout_failed", error=error)

    assert_no_secret(log_output.text)
    (record,) = log_output.events("payout_failed")
    assert f"RuntimeError: node rejected {MASK}" in record["exception"]
    assert record["error"] == f"RuntimeError('node rejected {MASK}')"


def test_stdlib_record_redacted(log_output: LogOutput) -> None:
    configure(log_output)
    logger = logging.getLogger("discord.http")

    logger.warning("request failed with %s", BOT_TOKEN, extra={"url": f"/x?key={API_KEY}"})
    try:
        raise ValueError(f"bad seed {SEED}")
    except ValueError:
        logger.exception("unhandled error")

    assert_no_secret(log_output.text)
    warning, error = log_output.records()
    assert warning["event"] == f"request failed with {MASK}"
    assert warning["url"] == f"/x?key={MASK}"
    assert f"ValueError: bad seed {MASK}" in error["exception"]


def test_console_mode_redacted(log_output: LogOutput) -> None:
    log_output.configure("console", secrets=(BOT_TOKEN, SEED, API_KEY))

    log.info("connecting", token_hint=BOT_TOKEN[:4], url=f"https://127.0.0.1/{API_KEY}")
    try:
        raise ValueError(SEED)
    except ValueError:
        logging.getLogger("aiohttp.server").exception("Error handling request")

    assert_no_secret(log_output.text)
    assert MASK in log_output.text


def test_secret_added_later_redacted(log_output: LogOutput) -> None:
    redactor = configure(log_output)
    rotated = "rotated-session-signing-key"

    assert redactor.add(rotated)
    log.info("key_rotated", detail=f"new key {rotated}")

    assert rotated not in log_output.text
    assert log_output.events("key_rotated")[0]["detail"] == f"new key {MASK}"


def test_short_secret_ignored() -> None:
    redactor = SecretRedactor()

    assert not redactor.add("")
    assert not redactor.add("admin")
    assert redactor.add("admin1")

    assert redactor.ignored_count == 2
    assert len(redactor) == 1
    assert redactor.redact_text("admin logged in as admin1") == f"admin logged in as {MASK}"


def test_overlapping_secrets_replaced_whole() -> None:
    redactor = SecretRedactor(["abcdef", "abcdef-123456"])

    assert redactor.redact_text("x abcdef-123456 y abcdef") == f"x {MASK} y {MASK}"


def test_secret_with_regex_characters() -> None:
    redactor = SecretRedactor(["a.b*c+d?(e)"])

    assert redactor.redact_text("value a.b*c+d?(e) end") == f"value {MASK} end"
    assert redactor.redact_text("value aXbbcdd end") == "value aXbbcdd end"


def test_no_secrets_leaves_text() -> None:
    redactor = SecretRedactor()

    assert redact(redactor, event="plain text", count=2) == {"event": "plain text", "count": 2}


def test_sensitive_keys_masked() -> None:
    redactor = SecretRedactor()

    event = redact(
        redactor,
        event="oauth_exchange",
        access_token="not-configured-anywhere",
        client_secret="also-unknown",
        operator_seed="00" * 32,
        password="pw",
        api_key="k",
        headers={"Authorization": "Bearer abc", "Accept": "application/json"},
        session_cookie="p2s_session=abc",
    )

    assert event["event"] == "oauth_exchange"
    assert event["access_token"] == MASK
    assert event["client_secret"] == MASK
    assert event["operator_seed"] == MASK
    assert event["password"] == MASK
    assert event["api_key"] == MASK
    assert event["headers"] == {"Authorization": MASK, "Accept": "application/json"}
    assert event["session_cookie"] == MASK


def test_sensitive_keys_keep_plain_values() -> None:
    redactor = SecretRedactor()

    event = redact(redactor, event="config_loaded", token_set=True, seed_index=0, api_key=None)

    assert event["token_set"] is True
    assert event["seed_index"] == 0
    assert event["api_key"] is None


def test_is_sensitive_key_names() -> None:
    for key in ("token", "bot_token", "Client-Secret", "seed", "passwd", "apiKey", "API-KEY"):
        assert is_sensitive_key(key), key
    for key in ("payout_id", "amount_raw", "block_hash", "event", "wallet"):
        assert not is_sensitive_key(key), key
    assert not is_sensitive_key(3)


def test_self_containing_value_handled() -> None:
    redactor = SecretRedactor(["cyclic-secret"])
    looped: dict[str, Any] = {"note": "cyclic-secret"}
    looped["self"] = looped

    event = redact(redactor, event="loop", data=looped)

    assert "cyclic-secret" not in repr(event)
    assert event["data"]["note"] == MASK


def test_repr_hides_secrets() -> None:
    redactor = SecretRedactor([BOT_TOKEN, "abc"])

    assert BOT_TOKEN not in repr(redactor)
    assert repr(redactor) == "SecretRedactor(secrets=1, ignored=1)"


class BrokenRepr:
    def __repr__(self) -> str:
        raise RuntimeError(f"cannot show {API_KEY}")


def test_broken_repr_replaced(log_output: LogOutput) -> None:
    configure(log_output)
    root = logging.getLogger()
    saved_handlers = root.handlers[:]

    # pytest's capture handler formats the raw event dict with repr() and would raise, so only
    # our handler stays on the root logger while this event is written.
    root.handlers = [handler for handler in saved_handlers if isinstance(handler, _RootHandler)]
    try:
        log.info("client_created", client=BrokenRepr(), headers={BrokenRepr(): "x"})
    finally:
        root.handlers = saved_handlers

    assert_no_secret(log_output.text)
    (record,) = log_output.events("client_created")
    assert record["client"] == "<BrokenRepr object, repr() failed>"
    assert record["headers"] == {"<BrokenRepr object, repr() failed>": "x"}


def test_non_string_keys_stay_hashable() -> None:
    redactor = SecretRedactor(["tuple-key-secret"])

    event = redact(redactor, event="lookup", table={("a", 1): "v", ("tuple-key-secret",): "w"})

    assert event["table"] == {("a", 1): "v", f"('{MASK}',)": "w"}


def test_handler_error_hides_record(log_output: LogOutput) -> None:
    configure(log_output)
    (handler,) = [h for h in logging.getLogger().handlers if isinstance(h, _RootHandler)]
    record = logging.LogRecord(
        "discord.http", logging.ERROR, __file__, 1, "request with %s", (BOT_TOKEN,), None
    )

    try:
        raise ValueError(f"formatting failed for {BOT_TOKEN}")
    except ValueError:
        handler.handleError(record)

    assert_no_secret(log_output.text)
    (line,) = log_output.records()
    assert line == {
        "level": "error",
        "logger": "discord.http",
        "event": "log_record_render_failed",
        "error_type": "ValueError",
    }


def test_other_handlers_get_redacted_events(
    log_output: LogOutput, caplog: pytest.LogCaptureFixture
) -> None:
    configure(log_output)

    try:
        raise RuntimeError(f"rejected {SEED}")
    except RuntimeError:
        log.exception("payout_failed", detail=f"token {BOT_TOKEN}")

    assert_no_secret(caplog.text)
    assert "payout_failed" in caplog.text
