"""Small HTML pages for the OAuth sign-in, in the product's branding.

Every value that comes from configuration or from a user is HTML-escaped. The pages load no
script, and the headers forbid framing and referrers: the callback page's URL carries the
authorization code, which a Referer header would send to the banner image's host.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from aiohttp import web

from core.config.product import ProductSettings
from core.services.oauth_login import LoginOutcome, LoginResult
from core.services.verification import IneligibleReason

LOGIN_PATH = "/auth/discord/login"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; img-src https: http:; style-src 'unsafe-inline'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;"
    "color:#222}img{max-width:100%}h1{font-size:1.4rem}footer{margin-top:3rem;color:#666;"
    "font-size:.85rem}a.button{display:inline-block;padding:.5rem 1rem;background:#5865f2;"
    "color:#fff;border-radius:4px;text-decoration:none}"
)


@dataclass(frozen=True, slots=True)
class Branding:
    """The names and banner shown on every page."""

    app_name: str
    org_name: str
    banner_url: str = ""

    @classmethod
    def from_settings(cls, product: ProductSettings) -> Branding:
        """Take the branding from product.yaml."""
        return cls(product.app_name, product.org_name, product.banner_url)


@dataclass(frozen=True, slots=True)
class PageText:
    """A page's account of what happened, the next step, and whether to offer a new sign-in."""

    title: str
    message: str
    next_step: str
    offer_login: bool


_SIGN_IN_AGAIN = "Start a new sign-in with the button below."

_OUTCOME_TEXT: dict[LoginOutcome, PageText] = {
    LoginOutcome.OK: PageText(
        "You are signed in",
        "Discord confirmed your account and your membership, and Yunite reports your Epic account.",
        "Use /status in the Discord server to see your kills and payouts.",
        False,
    ),
    LoginOutcome.MISSING_STATE: PageText(
        "Sign-in link incomplete",
        "This page was opened without the sign-in state that Discord sends back.",
        _SIGN_IN_AGAIN,
        True,
    ),
    LoginOutcome.UNKNOWN_STATE: PageText(
        "Sign-in not recognised",
        "This sign-in was not started here, or it is too old to be recognised.",
        _SIGN_IN_AGAIN,
        True,
    ),
    LoginOutcome.BROWSER_MISMATCH: PageText(
        "Sign-in started in another browser",
        "This sign-in was started in a different browser, or your browser blocked its cookie.",
        "Start the sign-in again in this browser, with cookies allowed for this site.",
        True,
    ),
    LoginOutcome.EXPIRED_STATE: PageText(
        "Sign-in expired",
        "More than 10 minutes passed between starting the sign-in and coming back.",
        _SIGN_IN_AGAIN,
        True,
    ),
    LoginOutcome.STATE_IN_PROGRESS: PageText(
        "Sign-in still running",
        "This sign-in is already being completed in another tab or request.",
        "Wait a moment and reload this page.",
        False,
    ),
    LoginOutcome.DENIED: PageText(
        "Sign-in cancelled",
        "You did not give permission on Discord's page, so nothing was changed.",
        "To sign in, start again and choose Authorize.",
        True,
    ),
    LoginOutcome.AUTHORIZE_ERROR: PageText(
        "Discord refused the sign-in request",
        "Discord reported an error with the faucet's sign-in request.",
        "Tell the server admins; the faucet's Discord application settings need a fix.",
        False,
    ),
    LoginOutcome.MISSING_CODE: PageText(
        "Sign-in incomplete",
        "Discord sent you back without an authorization code.",
        _SIGN_IN_AGAIN,
        True,
    ),
    LoginOutcome.INVALID_GRANT: PageText(
        "Sign-in expired at Discord",
        "Discord no longer accepts this sign-in, usually because it took too long.",
        _SIGN_IN_AGAIN,
        True,
    ),
    LoginOutcome.DISCORD_REJECTED_CLIENT: PageText(
        "Sign-in is misconfigured",
        "Discord rejected the faucet's application credentials.",
        "Tell the server admins; the faucet's Discord client ID, secret or redirect URI "
        "needs a fix.",
        False,
    ),
    LoginOutcome.DISCORD_REJECTED_TOKEN: PageText(
        "Discord rejected the sign-in",
        "Discord did not accept the access it granted a moment ago.",
        _SIGN_IN_AGAIN,
        True,
    ),
    LoginOutcome.DISCORD_UNAVAILABLE: PageText(
        "Discord is not responding",
        "Discord failed or took too long to answer, so the sign-in could not finish.",
        "Try again in a few minutes.",
        True,
    ),
    LoginOutcome.NOT_MEMBER: PageText(
        "Not a member of the server",
        "Your Discord account is not a member of the faucet's Discord server.",
        "Join the server first, then sign in again.",
        True,
    ),
    LoginOutcome.NOT_LINKED: PageText(
        "No Epic account linked",
        "Yunite has no Epic account linked to your Discord account in this server.",
        "Link your Epic account with the Yunite bot in the server, then sign in again.",
        True,
    ),
    LoginOutcome.EPIC_ACCOUNT_CONFLICT: PageText(
        "Epic account already in use",
        "The Epic account Yunite reports for you belongs to another player of this faucet.",
        "Ask the server admins to review it; they have been notified.",
        False,
    ),
    LoginOutcome.YUNITE_UNAVAILABLE: PageText(
        "Yunite is not responding",
        "Yunite could not be asked for your Epic account link, so nothing was changed.",
        "Try again in a few minutes.",
        True,
    ),
    LoginOutcome.INTERNAL_ERROR: PageText(
        "Something went wrong",
        "The faucet hit an unexpected error while signing you in.",
        "Try again later. If it keeps happening, tell the server admins.",
        True,
    ),
}

_REASON_TEXT = {
    IneligibleReason.NO_WALLET: "Register your Banano wallet with /link-wallet in the server.",
    IneligibleReason.FROZEN: "Your account is frozen by the admins; ask them why.",
    IneligibleReason.NOT_MEMBER: "Rejoin the Discord server.",
    IneligibleReason.MEMBERSHIP_UNKNOWN: "Your server membership could not be confirmed yet.",
    IneligibleReason.NO_EPIC_LINK: "Link your Epic account with the Yunite bot.",
    IneligibleReason.EPIC_ACCOUNT_CONFLICT: "Your Epic account is under admin review.",
}


def page_text(outcome: LoginOutcome) -> PageText:
    """Return the text of the page that reports `outcome`."""
    return _OUTCOME_TEXT[outcome]


def render_login_result(branding: Branding, result: LoginResult) -> web.Response:
    """Render the callback's page with the status that matches its outcome."""
    text = page_text(result.outcome)
    extra: list[str] = []
    if result.outcome is LoginOutcome.OK:
        if result.display_name:
            extra.append(f"Signed in as {result.display_name}.")
        extra.extend(_REASON_TEXT[reason] for reason in result.reasons if reason in _REASON_TEXT)
        if not result.reasons:
            extra.append("You are eligible: new kills pay at the next settlement.")
    return render_page(
        branding,
        title=text.title,
        paragraphs=[text.message, *extra, text.next_step],
        status=result.outcome.http_status,
        offer_login=text.offer_login,
    )


def render_rate_limited(branding: Branding, retry_after: str) -> web.Response:
    """Render the page for a client that sent too many sign-in requests."""
    response = render_page(
        branding,
        title="Too many sign-in attempts",
        paragraphs=[
            "This browser or network started too many sign-ins in a short time.",
            f"Wait {retry_after} seconds, then try again.",
        ],
        status=429,
        offer_login=False,
    )
    response.headers["Retry-After"] = retry_after
    return response


def render_page(
    branding: Branding,
    *,
    title: str,
    paragraphs: list[str],
    status: int,
    offer_login: bool,
) -> web.Response:
    """Render a branded page; every text is escaped here."""
    app_name = html.escape(branding.app_name)
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>{html.escape(title)} - {app_name}</title>",
        f"<style>{_STYLE}</style></head><body>",
    ]
    if branding.banner_url.startswith(("https://", "http://")):
        parts.append(f'<img src="{html.escape(branding.banner_url, quote=True)}" alt="">')
    parts.append(f"<p><strong>{app_name}</strong></p>")
    parts.append(f"<h1>{html.escape(title)}</h1>")
    parts.extend(f"<p>{html.escape(paragraph)}</p>" for paragraph in paragraphs)
    if offer_login:
        parts.append(f'<p><a class="button" href="{LOGIN_PATH}">Sign in with Discord</a></p>')
    parts.append(f"<footer>{app_name} is run by {html.escape(branding.org_name)}.</footer>")
    parts.append("</body></html>")

    return web.Response(
        status=status,
        text="\n".join(parts),
        content_type="text/html",
        charset="utf-8",
        headers=SECURITY_HEADERS,
    )
