"""Signed, expiring cookie values: the player's `p2s_session` and the OAuth browser binding.

A value is `base64url(payload) "." base64url(HMAC-SHA256(key, payload))`, where the payload is
compact JSON with the purpose, the subject and the expiry as Unix seconds. Each purpose signs
with its own key derived from the session secret, so a value issued for one purpose never
verifies as another. Signatures are compared in constant time. The payload is signed, not
encrypted: it carries no secret, only a Discord ID or a random browser nonce.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import SecretStr

from core.clock import Clock, utc_now

SESSION_COOKIE_NAME = "p2s_session"
SESSION_PURPOSE = "session"
SESSION_MAX_AGE = timedelta(days=7)

# A shorter session secret is rejected: a key as long as the SHA-256 output gives the HMAC
# its full strength.
MIN_SECRET_BYTES = 32

# A cookie value longer than this is rejected before any decoding work.
MAX_SIGNED_VALUE_LENGTH = 1024

_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class SignedPayload:
    """The verified content of a signed value."""

    purpose: str
    subject: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class PlayerSession:
    """A verified `p2s_session` cookie: who signed in and until when."""

    discord_id: int
    expires_at: datetime


class CookieSigner:
    """Sign and verify cookie values with keys derived from the session secret."""

    def __init__(self, secret: SecretStr, clock: Clock = utc_now) -> None:
        secret_bytes = secret.get_secret_value().encode()
        if len(secret_bytes) < MIN_SECRET_BYTES:
            raise ValueError(f"the session secret must be at least {MIN_SECRET_BYTES} bytes long")
        self._secret = secret_bytes
        self._clock = clock
        self._keys: dict[str, bytes] = {}

    def __repr__(self) -> str:
        return "CookieSigner(secret=**********)"

    def sign(self, purpose: str, subject: str, max_age: timedelta) -> str:
        """Return a signed value for `subject` that verifies for `purpose` until `max_age` ends."""
        if max_age <= timedelta(0):
            raise ValueError("max_age must be positive")
        expires = int((self._clock() + max_age).timestamp())
        payload = json.dumps(
            {"p": purpose, "s": subject, "e": expires}, separators=(",", ":"), sort_keys=True
        ).encode()
        signature = self._mac(purpose, payload)
        return f"{_encode(payload)}.{_encode(signature)}"

    def verify(self, purpose: str, value: str | None) -> SignedPayload | None:
        """Return the payload when `value` is well formed, signed for `purpose` and unexpired.

        Returns None for anything else (missing, malformed, tampered, expired, other purpose),
        because a caller treats all of these as "no valid cookie".
        """
        if not value or len(value) > MAX_SIGNED_VALUE_LENGTH:
            return None
        encoded_payload, separator, encoded_signature = value.partition(".")
        if not separator:
            return None

        payload = _decode(encoded_payload)
        signature = _decode(encoded_signature)
        if payload is None or signature is None:
            return None
        if not hmac.compare_digest(signature, self._mac(purpose, payload)):
            return None

        try:
            fields = json.loads(payload)
        except ValueError:
            return None
        if not isinstance(fields, dict):
            return None
        signed_purpose = fields.get("p")
        subject = fields.get("s")
        expires = fields.get("e")
        if signed_purpose != purpose or not isinstance(subject, str):
            return None
        if isinstance(expires, bool) or not isinstance(expires, int):
            return None

        expires_at = datetime.fromtimestamp(expires, UTC)
        if expires_at <= self._clock():
            return None
        return SignedPayload(purpose=purpose, subject=subject, expires_at=expires_at)

    def _mac(self, purpose: str, payload: bytes) -> bytes:
        key = self._keys.get(purpose)
        if key is None:
            key = hmac.new(self._secret, b"pay2slay-cookie:" + purpose.encode(), "sha256").digest()
            self._keys[purpose] = key
        return hmac.new(key, payload, hashlib.sha256).digest()


def issue_session(
    signer: CookieSigner, discord_id: int, max_age: timedelta = SESSION_MAX_AGE
) -> str:
    """Return a `p2s_session` cookie value for the player with this Discord ID."""
    return signer.sign(SESSION_PURPOSE, str(discord_id), max_age)


def read_session(signer: CookieSigner, value: str | None) -> PlayerSession | None:
    """Return the session in a `p2s_session` cookie value, or None when it is not valid."""
    payload = signer.verify(SESSION_PURPOSE, value)
    if payload is None or not payload.subject.isdigit():
        return None
    return PlayerSession(discord_id=int(payload.subject), expires_at=payload.expires_at)


def new_browser_nonce() -> str:
    """Return a random value that identifies one browser during an OAuth login."""
    return secrets.token_urlsafe(24)


def sha256_hex(text: str) -> str:
    """Return the hex SHA-256 of `text`, the form in which OAuth states are stored."""
    return hashlib.sha256(text.encode()).hexdigest()


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes | None:
    # The decoder skips characters outside the alphabet, so they are rejected here first.
    if not _BASE64URL.fullmatch(text):
        return None
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
