"""Signed cookie values: round trip, tampering, expiry and purpose separation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from core.services.sessions import CookieSigner, issue_session, read_session

SECRET = SecretStr("a-session-secret-of-at-least-32-chars!")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_session_round_trip(clock: Clock) -> None:
    signer = CookieSigner(SECRET, clock)
    value = issue_session(signer, 400000000000000001)

    session = read_session(signer, value)

    assert session is not None
    assert session.discord_id == 400000000000000001
    assert session.expires_at == clock.now + timedelta(days=7)


def test_session_expires(clock: Clock) -> None:
    signer = CookieSigner(SECRET, clock)
    value = issue_session(signer, 42, timedelta(minutes=5))

    clock.now += timedelta(minutes=5)

    assert read_session(signer, value) is None


@pytest.mark.parametrize("position", [0, 10, 50, 70, 90])
def test_tampered_value_rejected(clock: Clock, position: int) -> None:
    signer = CookieSigner(SECRET, clock)
    value = issue_session(signer, 42)
    if value[position] == ".":
        position += 1
    replacement = "A" if value[position] != "A" else "B"
    tampered = value[:position] + replacement + value[position + 1 :]

    assert read_session(signer, tampered) is None


@pytest.mark.parametrize("value", [None, "", "no-dot", "a.b", "!!!.???", "x" * 2000])
def test_malformed_values_rejected(clock: Clock, value: str | None) -> None:
    assert read_session(CookieSigner(SECRET, clock), value) is None


def test_other_secret_rejected(clock: Clock) -> None:
    value = issue_session(CookieSigner(SECRET, clock), 42)
    other = CookieSigner(SecretStr("another-secret-of-at-least-32-characters"), clock)

    assert read_session(other, value) is None


def test_purpose_separation(clock: Clock) -> None:
    signer = CookieSigner(SECRET, clock)
    browser_value = signer.sign("oauth_browser", "42", timedelta(minutes=10))

    assert read_session(signer, browser_value) is None
    payload = signer.verify("oauth_browser", browser_value)
    assert payload is not None
    assert payload.subject == "42"


def test_short_secret_refused(clock: Clock) -> None:
    with pytest.raises(ValueError, match="at least 32"):
        CookieSigner(SecretStr("short"), clock)


def test_repr_hides_secret(clock: Clock) -> None:
    assert SECRET.get_secret_value() not in repr(CookieSigner(SECRET, clock))
