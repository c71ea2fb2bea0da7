"""Per-client request limits for the side server's OAuth routes, held only in memory.

Clients are distinguished by their address, but the address is never stored. Each key is an
HMAC of it under a random per-process key, and nothing is written to the database or logged.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

Monotonic = Callable[[], float]

# The OAuth flow costs two requests per sign-in; this allows a few retries and then one
# request every six seconds.
DEFAULT_CAPACITY = 10
DEFAULT_REFILL_PER_MINUTE = 10.0
DEFAULT_MAX_CLIENTS = 10_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated_at: float


class ClientRateLimiter:
    """A token bucket per client: `capacity` requests at once, refilled at a steady rate.

    When more than `max_clients` buckets are kept, full buckets are dropped first and then the
    least recently used ones, so memory stays bounded whatever the number of clients.
    """

    def __init__(
        self,
        capacity: int = DEFAULT_CAPACITY,
        refill_per_minute: float = DEFAULT_REFILL_PER_MINUTE,
        *,
        max_clients: int = DEFAULT_MAX_CLIENTS,
        monotonic: Monotonic = time.monotonic,
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        if refill_per_minute <= 0:
            raise ValueError("refill_per_minute must be positive")
        if max_clients < 1:
            raise ValueError("max_clients must be at least 1")
        self._capacity = float(capacity)
        self._refill_per_second = refill_per_minute / 60.0
        self._max_clients = max_clients
        self._monotonic = monotonic
        self._key = secrets.token_bytes(32)
        self._buckets: dict[bytes, _Bucket] = {}

    @property
    def client_count(self) -> int:
        """How many client buckets are kept in memory."""
        return len(self._buckets)

    def check(self, client: str | None) -> float | None:
        """Take one request from the client's bucket.

        Returns None when the request is allowed, or the seconds until it would be.
        """
        key = hmac.new(self._key, (client or "").encode(), hashlib.sha256).digest()
        now = self._monotonic()
        bucket = self._buckets.get(key)
        if bucket is None:
            self._make_room(now)
            bucket = _Bucket(self._capacity, now)
            self._buckets[key] = bucket
        else:
            elapsed = max(0.0, now - bucket.updated_at)
            bucket.tokens = min(self._capacity, bucket.tokens + elapsed * self._refill_per_second)
            bucket.updated_at = now

        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / self._refill_per_second

    def _make_room(self, now: float) -> None:
        if len(self._buckets) < self._max_clients:
            return
        seconds_to_fill = self._capacity / self._refill_per_second
        full = [key for key, b in self._buckets.items() if now - b.updated_at >= seconds_to_fill]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) < self._max_clients:
            return
        by_age = sorted(self._buckets, key=lambda key: self._buckets[key].updated_at)
        for key in by_age[: max(1, len(by_age) // 2)]:
            del self._buckets[key]


def retry_after_header(seconds: float) -> str:
    """Return a Retry-After value in whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
