"""Base error for failures of the external identity and stats services."""

from __future__ import annotations

from core.errors import Pay2SlayError


class IntegrationError(Pay2SlayError):
    """A failure reported by, or in reaching, Yunite, the stats API or Discord OAuth2.

    Each subclass has a `safe_message` that names what the operator must fix. It never
    contains an API key, a client secret, a token or the text of another exception.
    """

    safe_message = "An external service could not complete the request. Try again later."
