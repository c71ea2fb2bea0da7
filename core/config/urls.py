"""Masking of passwords and tokens in URLs before they are printed, logged or shown in a repr.

The masking reads the text itself instead of parsing it with `urllib.parse` or SQLAlchemy,
because both raise on some malformed URLs (`postgresql://u:pw@[::1/x`), and a URL that cannot
be parsed must still not show its password. The rules cover both parsers' readings:

- The user part runs from `://` to the last `@` before the first `/`, `?` or `#` that follows
  the first `@`. Its password, everything after its first `:`, is masked. SQLAlchemy allows
  `/`, `?` and `#` in a password (`postgresql://u:pa/ss@host/db`), so they are included.
- In the query, the value of every parameter whose name contains `pass`, `pwd`, `secret` or
  `token` in any case (`password`, `sslpassword`, `access_token`) is masked.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

MASK = "**********"

_SECRET_PARAMETER_WORDS = ("pass", "pwd", "secret", "token")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_AUTHORITY_END = re.compile(r"[/?#]")


def mask_url_secrets(text: str) -> str:
    """Return `text` with the password and secret query parameters of a URL masked.

    Text without `scheme://` is returned unchanged.
    """
    return _split_secrets(text)[0]


def url_has_secret(text: str) -> bool:
    """Tell whether `text` is a URL with a password or a secret query parameter in it."""
    return bool(_split_secrets(text)[1])


def url_secret_values(text: str) -> list[str]:
    """Return the password and secret query values in URL `text`, as written and decoded.

    Both forms are returned so that a log redactor catches either, whichever a library prints.
    """
    values: list[str] = []
    for secret in _split_secrets(text)[1]:
        values.extend({secret, unquote(secret)})
    return values


def _split_secrets(text: str) -> tuple[str, list[str]]:
    scheme = _SCHEME.match(text)
    if scheme is None:
        return text, []
    prefix = text[: scheme.end()]
    rest = text[scheme.end() :]
    secrets: list[str] = []

    first_at = rest.find("@")
    if first_at != -1:
        end = _AUTHORITY_END.search(rest, first_at)
        last_at = rest.rfind("@", 0, end.start() if end else len(rest))
        username, colon, password = rest[:last_at].partition(":")
        if colon and password:
            secrets.append(password)
            prefix += f"{username}:{MASK}"
            rest = rest[last_at:]

    question = rest.find("?")
    if question == -1:
        return prefix + rest, secrets
    parameters = []
    for item in rest[question + 1 :].split("&"):
        name, equals, value = item.partition("=")
        if equals and value and _is_secret_parameter(name):
            secrets.append(value)
            item = f"{name}={MASK}"
        parameters.append(item)
    return f"{prefix}{rest[: question + 1]}{'&'.join(parameters)}", secrets


def _is_secret_parameter(name: str) -> bool:
    decoded = unquote(name).lower()
    return any(word in decoded for word in _SECRET_PARAMETER_WORDS)
