"""Base error type whose message is safe to show to players, admins and operators."""

from __future__ import annotations


class Pay2SlayError(Exception):
    """An expected failure with a message that is safe to show.

    `safe_message` never contains a secret or the text of another exception, so cogs and the
    side server can show it as it is.
    """

    safe_message: str = "The request could not be completed."

    def __init__(self, safe_message: str | None = None) -> None:
        if safe_message is not None:
            self.safe_message = safe_message
        super().__init__(self.safe_message)
