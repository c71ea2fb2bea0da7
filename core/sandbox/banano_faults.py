"""Faults the sandbox Banano node can inject into its replies, one request at a time."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class FaultKind(enum.Enum):
    """Kind of injected fault."""

    # Wait, then handle the request normally (a client with a shorter timeout gives up first).
    DELAY = "delay"
    # Reply {"error": text} with status 200 without acting on the request.
    ERROR = "error"
    # Reply with HTTP 500 without acting on the request.
    HTTP_500 = "http_500"
    # Reply status 200 with a body that is not JSON, without acting on the request.
    MALFORMED_JSON = "malformed_json"
    # Act on the request, then close the connection without a reply.
    REPLY_LOST_AFTER_APPLY = "reply_lost_after_apply"


@dataclass(frozen=True)
class Fault:
    """One injected fault; build it with the class methods."""

    kind: FaultKind
    delay_seconds: float = 0.0
    error_text: str = ""

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Wait `seconds` before handling the request normally."""
        if seconds < 0:
            raise ValueError("a delay must not be negative")
        return cls(FaultKind.DELAY, delay_seconds=seconds)

    @classmethod
    def error(cls, text: str) -> Fault:
        """Reply with the node error `text` (for example "Fork") and change nothing."""
        return cls(FaultKind.ERROR, error_text=text)

    @classmethod
    def http_500(cls) -> Fault:
        """Reply with HTTP status 500 and change nothing."""
        return cls(FaultKind.HTTP_500)

    @classmethod
    def malformed_json(cls) -> Fault:
        """Reply with a truncated JSON body and change nothing."""
        return cls(FaultKind.MALFORMED_JSON)

    @classmethod
    def reply_lost_after_apply(cls) -> Fault:
        """Apply the request, then drop the connection so the client sees a transport error."""
        return cls(FaultKind.REPLY_LOST_AFTER_APPLY)


@dataclass
class InjectedFault:
    """A fault waiting in an action's queue, with how many more requests it affects."""

    fault: Fault
    remaining: int
