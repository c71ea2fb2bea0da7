"""Local proof-of-work search in worker processes, so the event loop keeps running meanwhile.

The work rules themselves (the value of a nonce, validity, the root of a block) and the
single-threaded search live in `core.banano.work_search` and are re-exported here.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import os
import secrets
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool

from core.banano.errors import LocalWorkError, WorkGeneratorClosedError
from core.banano.work_search import (
    DEFAULT_CHUNK_ITERATIONS,
    MAX_NONCE,
    WORK_THRESHOLD,
    check_threshold,
    generate_work_local,
    is_valid_work,
    root_bytes,
    search_work_chunk,
    work_root,
    work_value,
)

# `LocalWorkGenerator` sizes its chunks so that each takes about this long in a worker. A
# cancelled or closed search lets go of its workers after the running chunk, so this is also
# about how long a cancelled search keeps a core busy. The hashing rate varies by an order of
# magnitude between hosts and with load, which rules out a fixed size.
DEFAULT_TARGET_CHUNK_SECONDS = 0.1
# Small enough for a slow core, large enough that sending a chunk to a worker costs little.
FIRST_CHUNK_ITERATIONS = 1 << 16
MIN_CHUNK_ITERATIONS = 1 << 12
MAX_CHUNK_ITERATIONS = 1 << 24

_WORKER_NICE_INCREMENT = 10
_PARENT_CHECK_SECONDS = 1.0


def next_chunk_iterations(iterations: int, elapsed_seconds: float, target_seconds: float) -> int:
    """Size the next chunk from how long a chunk of `iterations` nonces took.

    The size moves toward `target_seconds` by at most a factor of 2 per chunk, so one chunk
    slowed down by a busy host does not shrink the next one to nothing, and stays between
    `MIN_CHUNK_ITERATIONS` and `MAX_CHUNK_ITERATIONS`.
    """
    # A chunk too short for the clock to measure grows by the largest step.
    speed_up = target_seconds / elapsed_seconds if elapsed_seconds > 0 else 2.0
    factor = min(max(speed_up, 0.5), 2.0)
    return min(max(int(iterations * factor), MIN_CHUNK_ITERATIONS), MAX_CHUNK_ITERATIONS)


def _search_chunk_in_worker(
    root_hex: str, threshold: int, start_nonce: int, iterations: int
) -> tuple[str | None, int, float]:
    # Runs in a worker process. The time is measured there, so queueing and the transfer of
    # the result do not count toward the chunk size.
    started = time.perf_counter()
    found = search_work_chunk(root_hex, threshold, start_nonce, iterations)
    return found, os.getpid(), time.perf_counter() - started


def _prepare_worker(parent_id: int) -> None:
    # Ctrl-C in a terminal reaches the whole process group. The parent decides how to stop,
    # so a worker must not die under a search the parent still waits for.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    # A search keeps a core busy for seconds. On a small host the bot's own process, which
    # runs the event loop, should get the CPU first when both are ready to run.
    if hasattr(os, "nice"):
        os.nice(_WORKER_NICE_INCREMENT)

    # A parent killed with SIGKILL cannot shut the pool down, and an idle worker would wait
    # for its next chunk forever, holding the parent's output pipes open. The parent passes
    # its own id: one killed while this worker was starting is already gone here.
    if os.getppid() != parent_id:
        os._exit(0)
    threading.Thread(
        target=_exit_when_orphaned, args=(parent_id,), name="parent-watch", daemon=True
    ).start()


def _exit_when_orphaned(parent_id: int) -> None:
    while os.getppid() == parent_id:
        time.sleep(_PARENT_CHECK_SECONDS)
    os._exit(0)


class LocalWorkGenerator:
    """Local proof-of-work source whose searches run in worker processes that it owns.

    `generate` only awaits the workers' results, so the event loop keeps running meanwhile.

    Each search runs as chunks spread over `processes` workers, each worker on its own
    random range. Chunks take about `target_chunk_seconds` each, sized from the time earlier
    chunks took, unless `chunk_iterations` fixes their size. Between chunks the search checks
    for cancellation, so a cancelled `generate` frees the workers within one chunk. Call
    `close()` (or `aclose()`) when done.
    """

    def __init__(
        self,
        processes: int = 1,
        chunk_iterations: int | None = None,
        random_nonce: Callable[[], int] = lambda: secrets.randbits(64),
        *,
        target_chunk_seconds: float = DEFAULT_TARGET_CHUNK_SECONDS,
    ) -> None:
        if processes < 1:
            raise ValueError("processes must be at least 1")
        if chunk_iterations is not None and chunk_iterations < 1:
            raise ValueError("chunk_iterations must be at least 1")
        if target_chunk_seconds <= 0:
            raise ValueError("target_chunk_seconds must be positive")
        self._processes = processes
        self._adaptive = chunk_iterations is None
        self._chunk_iterations = (
            FIRST_CHUNK_ITERATIONS if chunk_iterations is None else chunk_iterations
        )
        self._target_chunk_seconds = target_chunk_seconds
        self._random_nonce = random_nonce
        self._worker_process_ids: set[int] = set()
        # "spawn" starts clean interpreters: forking a process that runs an event loop and
        # database threads can copy a lock in its held state and deadlock the child.
        self._executor = concurrent.futures.ProcessPoolExecutor(
            max_workers=processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_prepare_worker,
            initargs=(os.getpid(),),
        )
        self._closed = False

    @property
    def chunk_iterations(self) -> int:
        """The number of nonces the next chunk will try."""
        return self._chunk_iterations

    @property
    def worker_process_ids(self) -> frozenset[int]:
        """The process ids of the workers that have finished at least one chunk."""
        return frozenset(self._worker_process_ids)

    async def generate(self, root_hex: str, threshold: int) -> str:
        """Find a nonce whose work value for `root_hex` is at least `threshold`.

        Raises `WorkGeneratorClosedError` when the generator is closed before or during the
        search, and `LocalWorkError` when a worker process died.
        """
        if self._closed:
            raise WorkGeneratorClosedError()
        root_bytes(root_hex)
        check_threshold(threshold)

        loop = asyncio.get_running_loop()
        # One random range per worker, so workers never try the same nonce twice.
        next_nonces = [self._random_nonce() & MAX_NONCE for _ in range(self._processes)]
        idle_ranges = set(range(self._processes))
        pending: dict[asyncio.Future[tuple[str | None, int, float]], tuple[int, int]] = {}
        try:
            while True:
                for range_index in idle_ranges:
                    iterations = self._chunk_iterations
                    future = self._submit_chunk(
                        loop, root_hex, threshold, next_nonces[range_index], iterations
                    )
                    pending[future] = (range_index, iterations)
                    next_nonces[range_index] = (next_nonces[range_index] + iterations) & MAX_NONCE
                idle_ranges.clear()

                done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for future in done:
                    range_index, iterations = pending.pop(future)
                    idle_ranges.add(range_index)
                    found = self._chunk_result(future, iterations)
                    if found is not None:
                        return found
        finally:
            # Chunks that have not started are dropped; running ones end within one chunk.
            for future in pending:
                future.cancel()

    def _submit_chunk(
        self,
        loop: asyncio.AbstractEventLoop,
        root_hex: str,
        threshold: int,
        start_nonce: int,
        iterations: int,
    ) -> asyncio.Future[tuple[str | None, int, float]]:
        try:
            return loop.run_in_executor(
                self._executor,
                _search_chunk_in_worker,
                root_hex,
                threshold,
                start_nonce,
                iterations,
            )
        except RuntimeError as error:
            # The executor refuses new chunks after shutdown and once a worker died.
            if self._closed:
                raise WorkGeneratorClosedError() from error
            raise LocalWorkError() from error

    def _chunk_result(
        self, future: asyncio.Future[tuple[str | None, int, float]], iterations: int
    ) -> str | None:
        if future.cancelled():
            # Only `close()` cancels chunks that this search did not cancel itself.
            raise WorkGeneratorClosedError()
        try:
            found, worker_process_id, elapsed_seconds = future.result()
        except BrokenProcessPool as error:
            raise LocalWorkError() from error

        self._worker_process_ids.add(worker_process_id)
        if self._adaptive:
            self._chunk_iterations = next_chunk_iterations(
                iterations, elapsed_seconds, self._target_chunk_seconds
            )
        return found

    def close(self, wait: bool = True) -> None:
        """Stop the worker processes, waiting for running chunks to end unless `wait` is False.

        A search still running raises `WorkGeneratorClosedError` once its chunk ends.
        """
        self._closed = True
        self._executor.shutdown(wait=wait, cancel_futures=True)

    async def aclose(self) -> None:
        """Stop the worker processes without blocking the event loop."""
        await asyncio.to_thread(self.close)


__all__ = [
    "DEFAULT_CHUNK_ITERATIONS",
    "DEFAULT_TARGET_CHUNK_SECONDS",
    "MAX_NONCE",
    "WORK_THRESHOLD",
    "LocalWorkGenerator",
    "generate_work_local",
    "is_valid_work",
    "next_chunk_iterations",
    "search_work_chunk",
    "work_root",
    "work_value",
]
