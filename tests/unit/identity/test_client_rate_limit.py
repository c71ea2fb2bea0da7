"""The side server's per-client token bucket."""

from __future__ import annotations

from bot.web.ratelimit import ClientRateLimiter, retry_after_header


class Monotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_capacity_then_waits() -> None:
    clock = Monotonic()
    limiter = ClientRateLimiter(capacity=3, refill_per_minute=6, monotonic=clock)

    results = [limiter.check("198.51.100.7") for _ in range(4)]

    assert results[:3] == [None, None, None]
    assert results[3] == 10.0


def test_bucket_refills_over_time() -> None:
    clock = Monotonic()
    limiter = ClientRateLimiter(capacity=1, refill_per_minute=60, monotonic=clock)
    assert limiter.check("a") is None
    assert limiter.check("a") is not None

    clock.now += 1.0

    assert limiter.check("a") is None


def test_clients_have_separate_buckets() -> None:
    limiter = ClientRateLimiter(capacity=1, monotonic=Monotonic())

    assert limiter.check("a") is None
    assert limiter.check("b") is None
    assert limiter.check("a") is not None


def test_memory_bounded() -> None:
    clock = Monotonic()
    limiter = ClientRateLimiter(capacity=2, max_clients=100, monotonic=clock)

    for number in range(1000):
        clock.now += 0.001
        limiter.check(f"client-{number}")

    assert limiter.client_count <= 100


def test_addresses_not_kept_in_clear() -> None:
    limiter = ClientRateLimiter(monotonic=Monotonic())
    limiter.check("203.0.113.9")

    assert "203.0.113.9" not in repr(vars(limiter))


def test_retry_after_rounds_up() -> None:
    assert retry_after_header(0.2) == "1"
    assert retry_after_header(6.1) == "7"
