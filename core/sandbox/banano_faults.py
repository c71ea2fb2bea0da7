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
    # Reply status 200 with the given body text, after acting on the request or without it.
    RAW_BODY = "raw_body"
    # Act on the request, then send the reply one byte at a time with a pause before each.
    TRICKLE = "trickle"


@dataclass(frozen=True)
class Fault:
    """One injected fault; build it with the class methods."""

    kind: FaultKind
    delay_seconds: float = 0.0
    error_text: str = ""
    body: str = ""
    apply_first: bool = False

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

    @classmethod
    def raw_body(cls, body: str, *, apply_first: bool = False) -> Fault:
        """Reply with status 200 and exactly `body`, such as JSON a client cannot handle.

        With `apply_first` the request is applied before the reply, so a `process` block lands.
        """
        return cls(FaultKind.RAW_BODY, body=body, apply_first=apply_first)

    @classmethod
    def trickle(cls, seconds_per_byte: float) -> Fault:
        """Apply the request, then send the reply one byte per `seconds_per_byte`.

        Each byte arrives well within a per-read timeout, so only a total deadline stops it.
        """
        if seconds_per_byte <= 0:
            raise ValueError("the pause between bytes must be positive")
        return cls(FaultKind.TRICKLE, delay_seconds=seconds_per_byte)


@dataclass
class InjectedFault:
    """A fault waiting in an action's queue, with how many more requests it affects."""

    fault: Fault
    remaining: int
