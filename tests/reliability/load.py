"""Bounded loopback load, with a ticker that shows whether the event loop stayed responsive.

Two loads, each a fixed number of requests that ends by itself:
- the side server: OAuth logins from many client addresses, `/healthz` and `/metrics`;
- the command tree: concurrent `/status` dispatches from distinct users.

A ticker task sleeps `TICK_SECONDS` in a loop on the same event loop. Each finished request
records the ticker's count, so the caller can check that ticks happened while the load ran,
and the report gives the longest gap between two ticks. Timings are for the documentation;
the tests assert only on counts and statuses.

Run::

    python -m tests.reliability.load
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from core.observability.logging import configure_logging
from tests.reliability.side_server import FullFaucet, full_faucet
from tests.unit.cogs.harness import FakeWebhookAdapter, InteractionHarness, Invoker, Reply

TICK_SECONDS = 0.005


class Ticker:
    """Counts short sleeps on the event loop and remembers the longest gap between two."""

    def __init__(self) -> None:
        self.ticks = 0
        self.max_gap_seconds = 0.0
        self._task: asyncio.Task[None] | None = None
        self._first_tick = asyncio.Event()

    async def __aenter__(self) -> Ticker:
        self._task = asyncio.create_task(self._run())
        # One tick before the load starts, so the count before the first request is known.
        await self._first_tick.wait()
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(TICK_SECONDS)
            now = time.perf_counter()
            self.max_gap_seconds = max(self.max_gap_seconds, now - last)
            last = now
            self.ticks += 1
            self._first_tick.set()


@dataclass
class LoadReport:
    """What one load did: responses by kind, ticker counts at each completion, timings."""

    name: str
    requests: int = 0
    answers: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    ticks_at_completion: list[int] = field(default_factory=list)
    latencies_seconds: list[float] = field(default_factory=list)
    # Commands only: from the dispatch to the first response (Discord allows 3 seconds).
    first_reply_seconds: list[float] = field(default_factory=list)
    seconds: float = 0.0
    max_tick_gap_seconds: float = 0.0

    @property
    def ticked_during_load(self) -> bool:
        """Whether the ticker ran between the first and the last finished request."""
        return bool(self.ticks_at_completion) and (
            max(self.ticks_at_completion) > min(self.ticks_at_completion)
        )

    def summary(self) -> dict[str, object]:
        """Return the figures as plain values, for printing as JSON."""
        latencies = sorted(self.latencies_seconds) or [0.0]
        first_replies = sorted(self.first_reply_seconds)
        figures: dict[str, object] = {
            "load": self.name,
            "requests": self.requests,
            "answers": dict(sorted(self.answers.items())),
            "errors": len(self.errors),
            "seconds": round(self.seconds, 2),
            "requests_per_second": round(self.requests / self.seconds, 1) if self.seconds else 0,
            "latency_median_ms": round(statistics.median(latencies) * 1000, 1),
            "latency_p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1),
            "max_event_loop_gap_ms": round(self.max_tick_gap_seconds * 1000, 1),
            "ticks": max(self.ticks_at_completion, default=0),
        }
        if first_replies:
            figures["first_reply_median_ms"] = round(statistics.median(first_replies) * 1000, 1)
            figures["first_reply_max_ms"] = round(first_replies[-1] * 1000, 1)
        return figures


async def run_bounded(
    report: LoadReport,
    calls: list[Callable[[], Awaitable[str]]],
    concurrency: int,
) -> LoadReport:
    """Run every call at most `concurrency` at a time; each returns the answer's kind."""
    limit = asyncio.Semaphore(concurrency)
    started = time.perf_counter()
    async with Ticker() as ticker:

        async def one(call: Callable[[], Awaitable[str]]) -> None:
            async with limit:
                begun = time.perf_counter()
                try:
                    answer = await call()
                except Exception as error:
                    report.errors.append(f"{type(error).__name__}: {error}")
                    answer = "exception"
                report.latencies_seconds.append(time.perf_counter() - begun)
                report.answers[answer] += 1
                report.ticks_at_completion.append(ticker.ticks)

        await asyncio.gather(*(one(call) for call in calls))
        report.max_tick_gap_seconds = ticker.max_gap_seconds
    report.requests = len(calls)
    report.seconds = time.perf_counter() - started
    return report


async def side_server_load(
    faucet: FullFaucet,
    *,
    logins: int = 300,
    health: int = 600,
    metrics: int = 300,
    concurrency: int = 50,
    login_clients: int = 60,
) -> LoadReport:
    """Send a fixed mix of requests to the side server and return what came back."""
    token = faucet.secrets.metrics_token
    sessions = [
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(local_addr=(f"127.0.9.{index + 2}", 0)),
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        for index in range(login_clients)
    ]
    plain = aiohttp.ClientSession()

    def get(
        session: aiohttp.ClientSession, path: str, headers: dict[str, str] | None = None
    ) -> Callable[[], Awaitable[str]]:
        async def call() -> str:
            async with session.get(
                f"{faucet.base_url}{path}", headers=headers, allow_redirects=False
            ) as response:
                await response.read()
                return f"{path} {response.status}"

        return call

    calls = [get(sessions[index % login_clients], "/auth/discord/login") for index in range(logins)]
    calls += [get(plain, "/healthz") for _ in range(health)]
    bearer = {"Authorization": f"Bearer {token}"}
    calls += [get(plain, "/metrics", bearer) for _ in range(metrics)]
    # Interleave the kinds, so the server gets them mixed as in production.
    calls = [
        calls[index] for index in sorted(range(len(calls)), key=lambda i: (i * 7919) % len(calls))
    ]
    try:
        return await run_bounded(LoadReport("side server"), calls, concurrency)
    finally:
        for session in (*sessions, plain):
            await session.close()


class TokenAdapter(FakeWebhookAdapter):
    """The harness's adapter, also filing each reply under its interaction's token.

    The harness returns the replies recorded since a dispatch began, which mixes replies
    of dispatches that run at the same time. A token per interaction keeps them apart.
    """

    def __init__(self) -> None:
        super().__init__()
        self.by_token: dict[str, list[Reply]] = defaultdict(list)
        self.first_reply_at: dict[str, float] = {}

    def _file(self, token: str) -> None:
        self.by_token[token].append(self.replies[-1])
        self.first_reply_at.setdefault(token, time.perf_counter())

    async def create_interaction_response(  # type: ignore[override]
        self, interaction_id: int, token: str, *, params: Any, **kwargs: Any
    ) -> dict[str, Any]:
        answer = await super().create_interaction_response(
            interaction_id, token, params=params, **kwargs
        )
        self._file(token)
        return answer

    async def edit_original_interaction_response(  # type: ignore[override]
        self,
        application_id: int,
        token: str,
        *,
        payload: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        answer = await super().edit_original_interaction_response(
            application_id, token, payload=payload, **kwargs
        )
        self._file(token)
        return answer

    async def execute_webhook(  # type: ignore[override]
        self,
        webhook_id: int,
        token: str,
        *,
        payload: dict[str, Any] | None = None,
        wait: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any] | None:
        answer = await super().execute_webhook(
            webhook_id, token, payload=payload, wait=wait, **kwargs
        )
        self._file(token)
        return answer


async def status_load(
    harness: InteractionHarness, invokers: list[Invoker], unexpected_text: str
) -> LoadReport:
    """Dispatch `/status` once for each invoker, all at once, through the command tree."""
    adapter = TokenAdapter()
    harness.adapter = adapter

    def status(index: int, invoker: Invoker) -> Callable[[], Awaitable[str]]:
        async def call() -> str:
            begun = time.perf_counter()
            interaction = harness.build_command("status", invoker)
            token = f"load-{index}"
            interaction.token = token
            await harness.dispatch(interaction)
            if token in adapter.first_reply_at:
                report.first_reply_seconds.append(adapter.first_reply_at[token] - begun)
            replies = adapter.by_token[token]
            kinds = "+".join(reply.kind for reply in replies)
            if any(unexpected_text in reply.text for reply in replies):
                return f"unexpected error ({kinds})"
            return kinds

        return call

    report = LoadReport("/status")
    calls = [status(index, invoker) for index, invoker in enumerate(invokers)]
    return await run_bounded(report, calls, concurrency=len(calls))


async def main_async(workdir: Path) -> list[dict[str, object]]:
    """Run the side server load and return its summary."""
    async with full_faucet(workdir) as faucet:
        report = await side_server_load(faucet)
    return [report.summary()]


def main() -> int:
    """Print the side server load's figures; the command-tree load runs in the test suite."""
    configure_logging(log_format="console", level="WARNING", secrets=())
    with tempfile.TemporaryDirectory(prefix="p2s-load-") as workdir:
        summaries = asyncio.run(main_async(Path(workdir)))
    print(json.dumps(summaries, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
