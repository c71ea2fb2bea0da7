"""Sources of proof of work, a fallback chain over them, and a cache that starts work early.

Every provider has `async def generate(root_hex, threshold) -> str` returning a 16-hex-digit
nonce. `DoWorkProvider` is the exception: it is only a marker telling the local signer to let
the node compute work during `process` (`"do_work": true`, offered by public Banano APIs).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from typing import Protocol

import httpx
import structlog

from core.banano.errors import InvalidWorkError
from core.banano.rpc import NodeClient
from core.banano.work import LocalWorkGenerator, is_valid_work
from core.errors import Pay2SlayError

log = structlog.get_logger(__name__)

_WORK_TEXT = re.compile(r"[0-9A-Fa-f]{16}", re.ASCII)
# Errors that a failing provider raises: typed errors of this project (node, work, validation), HTTP
# failures, the RuntimeError of a closed or broken process pool, and the untyped errors of a
# provider that chokes on a reply (ValueError, KeyError, TypeError).
_PROVIDER_ERRORS = (
    Pay2SlayError,
    httpx.HTTPError,
    OSError,
    RuntimeError,
    ValueError,
    LookupError,
    TypeError,
)


class WorkUnavailableError(Pay2SlayError):
    """No configured provider returned valid proof of work."""

    safe_message = "No proof-of-work provider returned valid work."


class WorkProvider(Protocol):
    """Anything that computes proof of work for a root at a threshold."""

    async def generate(self, root_hex: str, threshold: int) -> str:
        """Return a nonce (16 hex digits) whose work value for `root_hex` reaches `threshold`."""
        ...


def difficulty_hex(threshold: int) -> str:
    """Format a threshold as the 16 lower-case hex digits that `work_generate` takes."""
    return f"{threshold:016x}"


class NodeWorkProvider:
    """Work from the node's `work_generate` (needs `enable_control` on the node)."""

    def __init__(self, node: NodeClient) -> None:
        self._node = node

    async def generate(self, root_hex: str, threshold: int) -> str:
        """Ask the node for work. Node errors propagate as `NodeError`."""
        return await self._node.work_generate(root_hex, difficulty_hex(threshold))


class WorkServerProvider:
    """Work from a work server (such as the Nano or Banano work server) at `url`.

    `timeout_seconds` bounds each request as a whole, reading the reply included.
    """

    def __init__(self, url: str, http: httpx.AsyncClient, timeout_seconds: float = 30.0) -> None:
        self._url = url
        self._http = http
        self._timeout_seconds = timeout_seconds

    def __repr__(self) -> str:
        return f"WorkServerProvider(url={self._url!r})"

    async def generate(self, root_hex: str, threshold: int) -> str:
        """POST a `work_generate` request and return the work it replies with.

        Raises `WorkUnavailableError` for a transport failure, a timeout, an HTTP error, an
        error reply or a reply without a well-formed `work` field.
        """
        request = {
            "action": "work_generate",
            "hash": root_hex,
            "difficulty": difficulty_hex(threshold),
        }
        try:
            # httpx's timeouts apply to each read, so a server sending a byte now and then
            # would never trip them. This deadline covers the whole request.
            async with asyncio.timeout(self._timeout_seconds):
                response = await self._http.post(
                    self._url, json=request, timeout=httpx.Timeout(self._timeout_seconds)
                )
            response.raise_for_status()
            reply = response.json()
        except TimeoutError as error:
            raise WorkUnavailableError("The work server did not reply in time.") from error
        except (httpx.HTTPError, ValueError, RecursionError) as error:
            # ValueError covers invalid JSON and integers longer than int() accepts, and
            # RecursionError comes from JSON nested thousands of levels deep.
            raise WorkUnavailableError(
                f"The work server failed ({type(error).__name__})."
            ) from error

        work = reply.get("work") if isinstance(reply, dict) else None
        if not isinstance(work, str) or _WORK_TEXT.fullmatch(work) is None:
            raise WorkUnavailableError("The work server reply has no valid 'work' field.")
        return work.lower()


class LocalWorkProvider:
    """Work searched on this machine's CPU in worker processes (`LocalWorkGenerator`)."""

    def __init__(self, generator: LocalWorkGenerator) -> None:
        self._generator = generator

    async def generate(self, root_hex: str, threshold: int) -> str:
        """Search for work without blocking the event loop."""
        return await self._generator.generate(root_hex, threshold)


class DoWorkProvider:
    """Marker: submit blocks without work and with `"do_work": true`, so the node adds it.

    It has no `generate` method because the work never passes through this process.
    """

    def __repr__(self) -> str:
        return "DoWorkProvider()"


class FallbackWorkProvider:
    """A chain of providers tried in order: a slow, failing or wrong one falls through.

    `per_provider_timeout_seconds` is one limit for every provider, or a sequence with one
    limit per provider in the same order (a node's `work_generate` may deserve less time than
    a local CPU search). Every nonce returned is checked with `is_valid_work`, so a provider
    returning bad work counts as failed.
    """

    def __init__(
        self,
        providers: Sequence[WorkProvider],
        per_provider_timeout_seconds: float | Sequence[float],
    ) -> None:
        if not providers:
            raise ValueError("FallbackWorkProvider needs at least one provider.")
        if isinstance(per_provider_timeout_seconds, int | float):
            timeouts = (float(per_provider_timeout_seconds),) * len(providers)
        else:
            timeouts = tuple(per_provider_timeout_seconds)
            if len(timeouts) != len(providers):
                raise ValueError(
                    f"FallbackWorkProvider needs one timeout per provider: {len(providers)} "
                    f"providers, {len(timeouts)} timeouts."
                )
        self._providers = tuple(zip(providers, timeouts, strict=True))

    async def generate(self, root_hex: str, threshold: int) -> str:
        """Return the first valid work any provider produces, or raise `WorkUnavailableError`."""
        for position, (provider, timeout_seconds) in enumerate(self._providers, start=1):
            provider_name = type(provider).__name__
            try:
                async with asyncio.timeout(timeout_seconds):
                    work = await provider.generate(root_hex, threshold)
            except TimeoutError:
                log.warning(
                    "work_provider_timed_out",
                    provider=provider_name,
                    position=position,
                    timeout_seconds=timeout_seconds,
                    root=root_hex,
                )
                continue
            except _PROVIDER_ERRORS as error:
                log.warning(
                    "work_provider_failed",
                    provider=provider_name,
                    position=position,
                    error=type(error).__name__,
                    root=root_hex,
                )
                continue

            if _is_valid(root_hex, work, threshold):
                return work
            log.warning(
                "work_provider_invalid_work",
                provider=provider_name,
                position=position,
                root=root_hex,
            )
        raise WorkUnavailableError()


def _is_valid(root_hex: str, work: str, threshold: int) -> bool:
    try:
        return is_valid_work(root_hex, work, threshold)
    except InvalidWorkError:
        return False


class WorkCache:
    """Work computed ahead: `precompute(root)` starts it, `get(root)` takes the result.

    After each block of the operator account its hash is the root of the next block, so the
    senders call `precompute` with it and the next payout rarely waits for work. At most
    `max_entries` roots are kept; the oldest is cancelled when a new one is added. Share one
    cache between the local signer and the receiver of an account.
    """

    def __init__(self, provider: WorkProvider, threshold: int, max_entries: int = 4) -> None:
        self._provider = provider
        self.threshold = threshold
        self._max_entries = max_entries
        self._tasks: dict[str, asyncio.Task[str]] = {}

    def precompute(self, root_hex: str) -> None:
        """Start computing work for `root_hex` in the background, unless already started."""
        root = root_hex.upper()
        if root in self._tasks:
            return
        while len(self._tasks) >= self._max_entries:
            oldest_root = next(iter(self._tasks))
            self._tasks.pop(oldest_root).cancel()

        task = asyncio.create_task(
            self._provider.generate(root, self.threshold), name=f"work-{root[:16]}"
        )
        task.add_done_callback(_log_background_failure)
        self._tasks[root] = task
        log.debug("work_precompute_started", root=root)

    async def get(self, root_hex: str) -> str:
        """Return valid work for `root_hex`: the precomputed result if any, else a fresh one.

        A failed or invalid precomputation is discarded and computed again once. Raises
        `WorkUnavailableError` when that fails too.
        """
        root = root_hex.upper()
        task = self._tasks.pop(root, None)
        if task is not None and not task.cancelled():
            # Cancelling the caller cancels the task too, because no other code references it now.
            try:
                work = await task
            except _PROVIDER_ERRORS:
                pass
            else:
                if _is_valid(root, work, self.threshold):
                    return work
            log.info("work_precompute_discarded", root=root)

        try:
            work = await self._provider.generate(root, self.threshold)
        except WorkUnavailableError:
            raise
        except _PROVIDER_ERRORS as error:
            raise WorkUnavailableError(f"Proof of work failed ({type(error).__name__}).") from error
        if not _is_valid(root, work, self.threshold):
            raise WorkUnavailableError("The work provider returned work below the threshold.")
        return work

    def discard(self, root_hex: str) -> None:
        """Cancel and forget work for a root that will not be used (its block was replaced)."""
        task = self._tasks.pop(root_hex.upper(), None)
        if task is not None:
            task.cancel()

    async def close(self) -> None:
        """Cancel every background computation and wait for them to end."""
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _log_background_failure(task: asyncio.Task[str]) -> None:
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        log.warning("work_precompute_failed", task=task.get_name(), error=type(error).__name__)
