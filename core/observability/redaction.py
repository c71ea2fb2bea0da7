"""Removal of configured secret values, and of values under secret-like keys, from log events."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from structlog.typing import EventDict, WrappedLogger

MASK = "**********"

# Secrets shorter than this are not redacted, because replacing every "admin" or "12345" in
# every log line would make the logs unreadable. configure_logging() logs how many it ignored.
MIN_SECRET_LENGTH = 6

# Values under keys that match this are masked whatever they contain, so a token that was never
# configured (a session cookie, an OAuth access token, an Authorization header) is hidden too.
SENSITIVE_KEY_PATTERN = re.compile(
    r"token|secret|seed|passw(?:or)?d|api[-_]?key|authorization|private[-_]?key|signing[-_]?key"
    r"|cookie",
    re.IGNORECASE,
)

# Nested containers deeper than this are rendered with repr() and redacted as text, which also
# stops the walk on a container that contains itself.
_MAX_DEPTH = 12

# Values of these types carry no secret text and keep their type in the rendered output.
_PLAIN_TYPES = (bool, int, float, type(None))


def is_sensitive_key(key: object) -> bool:
    """Return True when a field with this name must have its value masked."""
    return isinstance(key, str) and SENSITIVE_KEY_PATTERN.search(key) is not None


class SecretRedactor:
    """A structlog processor that replaces every configured secret value with `MASK`.

    It walks the whole event dict: the event text, every string in nested dicts, lists, tuples
    and sets, the formatted exception and stack text, and the repr() of any other object. Values
    under a sensitive key (see `is_sensitive_key`) are masked whole unless they are None, a bool
    or a number. Secrets can be added while the program runs with `add`.

    NOTE: only literal occurrences are found. A secret that reaches a log line transformed
    (base64 in a Basic Authorization header, percent-encoded, split across two fields) is only
    hidden when its key is a sensitive one.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: frozenset[str] = frozenset()
        self._pattern: re.Pattern[str] | None = None
        self.ignored_count = 0
        for secret in secrets:
            self.add(secret)

    def __repr__(self) -> str:
        return f"SecretRedactor(secrets={len(self._secrets)}, ignored={self.ignored_count})"

    def __len__(self) -> int:
        return len(self._secrets)

    def add(self, secret: str) -> bool:
        """Add a secret value to redact from now on.

        Returns False, and counts it in `ignored_count`, when the value is shorter than
        `MIN_SECRET_LENGTH` characters (an empty value included) and so is not redacted.
        """
        if len(secret) < MIN_SECRET_LENGTH:
            self.ignored_count += 1
            return False

        if secret in self._secrets:
            return True

        secrets = self._secrets | {secret}

        # Longest first, so a secret that contains another one is replaced whole.
        alternatives = sorted(secrets, key=len, reverse=True)
        pattern = re.compile("|".join(re.escape(value) for value in alternatives))

        # Each attribute is replaced by one assignment, so a thread that logs while another adds
        # a secret uses either the old or the new pattern, never a half-built one.
        self._secrets = secrets
        self._pattern = pattern
        return True

    def redact_text(self, text: str) -> str:
        """Return `text` with every configured secret replaced by `MASK`."""
        pattern = self._pattern
        if pattern is None:
            return text
        return pattern.sub(MASK, text)

    def redact_value(self, value: Any, depth: int = 0) -> Any:
        """Return `value` with secrets replaced, rebuilding containers that contain any."""
        if isinstance(value, str):
            return self.redact_text(value)

        if isinstance(value, _PLAIN_TYPES):
            return value

        if depth >= _MAX_DEPTH:
            return self.redact_text(repr(value))

        if isinstance(value, Mapping):
            return {
                self._redact_key(key): (
                    MASK
                    if is_sensitive_key(key) and not isinstance(item, _PLAIN_TYPES)
                    else self.redact_value(item, depth + 1)
                )
                for key, item in value.items()
            }

        if isinstance(value, list | tuple | set | frozenset):
            return [self.redact_value(item, depth + 1) for item in value]

        if isinstance(value, bytes | bytearray):
            return self.redact_text(bytes(value).decode("utf-8", errors="replace"))

        # Both renderers show any other object with repr(). Only when that text contains a secret
        # is the object replaced by its redacted repr.
        text = _safe_repr(value)
        if text is None:
            return f"<{type(value).__name__} object, repr() failed>"
        redacted = self.redact_text(text)
        return value if redacted == text else redacted

    def _redact_key(self, key: Any) -> Any:
        # Keys stay hashable: a key that is not a string is kept unless its repr contains a secret.
        if isinstance(key, str):
            return self.redact_text(key)
        text = _safe_repr(key)
        if text is None:
            return f"<{type(key).__name__} object, repr() failed>"
        redacted = self.redact_text(text)
        return key if redacted == text else redacted

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        """Redact one event dict, as a structlog processor."""
        redacted: EventDict = {}
        for key, value in event_dict.items():
            if is_sensitive_key(key) and not isinstance(value, _PLAIN_TYPES):
                redacted[key] = MASK
            else:
                redacted[key] = self.redact_value(value)
        return redacted


def _safe_repr(value: object) -> str | None:
    try:
        return repr(value)
    except Exception:
        # A broken __repr__ must not break logging, and its error text could contain anything.
        return None
