"""Sign-in pages: escaping, status codes and one text per outcome."""

from __future__ import annotations

from bot.web.pages import Branding, page_text, render_login_result
from core.services.oauth_login import LoginOutcome, LoginResult
from core.services.verification import IneligibleReason

BRANDING = Branding('<script>alert("x")</script>', "Org & Co", 'javascript:alert("x")')


def test_every_outcome_has_text_and_status() -> None:
    for outcome in LoginOutcome:
        assert page_text(outcome).title
        assert 200 <= outcome.http_status < 600


def test_branding_escaped_and_unsafe_banner_dropped() -> None:
    response = render_login_result(BRANDING, LoginResult(LoginOutcome.OK, 1, "<b>me</b>"))
    body = response.text or ""

    assert "<script>" not in body
    assert "&lt;script&gt;" in body
    assert "Org &amp; Co" in body
    assert "javascript:" not in body
    assert "&lt;b&gt;me&lt;/b&gt;" in body


def test_missing_wallet_named_on_success_page() -> None:
    result = LoginResult(LoginOutcome.OK, 1, "me", reasons=(IneligibleReason.NO_WALLET,))
    body = render_login_result(BRANDING, result).text or ""

    assert "/link-wallet" in body


def test_failure_statuses() -> None:
    statuses = {
        outcome: render_login_result(BRANDING, LoginResult(outcome)).status
        for outcome in (
            LoginOutcome.MISSING_STATE,
            LoginOutcome.BROWSER_MISMATCH,
            LoginOutcome.EXPIRED_STATE,
            LoginOutcome.DISCORD_UNAVAILABLE,
            LoginOutcome.DISCORD_REJECTED_CLIENT,
        )
    }
    assert statuses == {
        LoginOutcome.MISSING_STATE: 400,
        LoginOutcome.BROWSER_MISMATCH: 403,
        LoginOutcome.EXPIRED_STATE: 410,
        LoginOutcome.DISCORD_UNAVAILABLE: 503,
        LoginOutcome.DISCORD_REJECTED_CLIENT: 502,
    }
