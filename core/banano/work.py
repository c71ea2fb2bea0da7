"""Proof of work: validation against a threshold and a local CPU search.

The work value of a nonce is the 8-byte Blake2b digest of the nonce (8 bytes little-endian)
followed by the 32-byte root, read as a little-endian unsigned integer. Work is valid when
the value is at least the threshold. The root is the previous block's hash, or the account's
public key for its first block. JSON carries the nonce as 16 lower-case hex digits.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import multiprocessing
import os
import re
import secrets
from collections.abc import Callable

from core.banano.blocks import StateBlock
from core.banano.errors import InvalidWorkError, WorkNotFoundError

# The threshold that Banano nodes apply to send and receive blocks.
WORK_THRESHOLD = 0xFFFFFE0000000000
MAX_NONCE = 2**64 - 1

# About 0.3 s of hashing at 3.4 million nonces per second, the rate that
# tests/benchmarks/bench_banano_primitives.py measured on one core of a 2-vCPU Intel Xeon host.
# A cancelled search stops after its current chunk.
DEFAULT_CHUNK_ITERATIONS = 1 << 20

_ROOT_HEX = re.compile(r"[0-9A-Fa-f]{64}", re.ASCII)
_WORK_HEX = re.compile(r"[0-9A-Fa-f]{16}", re.ASCII)
_NONCE_COUNT = MAX_NONCE + 1
_WORKER_NICE_INCREMENT = 10


def _root_bytes(root_hex: str) -> bytes:
    if not isinstance(root_hex, str) or _ROOT_HEX.fullmatch(root_hex) is None:
        raise InvalidWorkError("The work root must be 64 hexadecimal digits.")
    return bytes.fromhex(root_hex)


def _check_threshold(threshold: int) -> int:
    if isinstance(threshold, bool) or not isinstance(threshold, int):
        raise InvalidWorkError("The work threshold must be an int.")
    if not 0 <= threshold <= MAX_NONCE:
        raise InvalidWorkError("The work threshold must be an unsigned 64-bit integer.")
    return threshold


def _nonce_value(root: bytes, nonce: int) -> int:
    digest = hashlib.blake2b(nonce.to_bytes(8, "little") + root, digest_size=8).digest()
    return int.from_bytes(digest, "little")


def work_value(root_hex: str, work_hex: str) -> int:
    """Compute the work value of the nonce `work_hex` (16 hex digits) for `root_hex`."""
    if not isinstance(work_hex, str) or _WORK_HEX.fullmatch(work_hex) is None:
        raise InvalidWorkError("The work must be 16 hexadecimal digits.")
    return _nonce_value(_root_bytes(root_hex), int(work_hex, 16))


def is_valid_work(root_hex: str, work_hex: str, threshold: int = WORK_THRESHOLD) -> bool:
    """Return whether `work_hex` reaches `threshold` for `root_hex`."""
    return work_value(root_hex, work_hex) >= _check_threshold(threshold)


def work_root(block: StateBlock) -> str:
    """Return the root that a block's work is computed on, as 64 upper-case hex digits."""
    if block.is_open:
        return block.account_public_key.hex().upper()
    return block.previous


def _search_range(root: bytes, threshold: int, start_nonce: int, iterations: int) -> int | None:
    # This is the hot loop: copying a prepared hash object is faster than building one, and
    # the top byte of the little-endian value is checked before the whole value.
    copy_empty_hash = hashlib.blake2b(digest_size=8).copy
    top_byte_threshold = threshold >> 56
    end_nonce = min(start_nonce + iterations, _NONCE_COUNT)
    for nonce in range(start_nonce, end_nonce):
        state = copy_empty_hash()
        state.update(nonce.to_bytes(8, "little"))
        state.update(root)
        digest = state.digest()
        if digest[7] >= top_byte_threshold and int.from_bytes(digest, "little") >= threshold:
            return nonce
    return None


def search_work_chunk(
    root_hex: str, threshold: int, start_nonce: int, iterations: int
) -> str | None:
    """Try `iterations` consecutive nonces from `start_nonce`, wrapping after 2**64 - 1.

    Returns the first valid nonce as 16 lower-case hex digits, or None. This is the unit of
    work that `LocalWorkGenerator` sends to its worker processes.
    """
    root = _root_bytes(root_hex)
    _check_threshold(threshold)
    if not 0 <= start_nonce <= MAX_NONCE or iterations < 0:
        raise InvalidWorkError("The start nonce or the iteration count is out of range.")

    remaining = min(iterations, _NONCE_COUNT)
    nonce = start_nonce
    while remaining > 0:
        span = min(remaining, _NONCE_COUNT - nonce)
        found = _search_range(root, threshold, nonce, span)
        if found is not None:
            return f"{found:016x}"
        remaining -= span
        nonce = 0
    return None


def generate_work_local(
    root_hex: str,
    threshold: int,
    max_iterations: int | None = None,
    *,
    start_nonce: int | None = None,
) -> str:
    """Search for valid work on the calling thread, from a random nonce unless one is given.

    This blocks for seconds at `WORK_THRESHOLD`; async code uses `LocalWorkGenerator`.
    Raises `WorkNotFoundError` when `max_iterations` nonces were tried without success.
    """
    _root_bytes(root_hex)
    _check_threshold(threshold)
    nonce = secrets.randbits(64) if start_nonce is None else start_nonce
    if max_iterations is not None:
        found = search_work_chunk(root_hex, threshold, nonce, max_iterations)
        if found is None:
            raise WorkNotFoundError()
        return found

    while True:
        found = search_work_chunk(root_hex, threshold, nonce, DEFAULT_CHUNK_ITERATIONS)
        if found is not None:
            return found
        nonce = (nonce + DEFAULT_CHUNK_ITERATIONS) & MAX_NONCE


def _lower_worker_priority() -> None:
    # A search keeps a core busy for seconds. On a small host the bot's own process, which
    # runs the event loop, should get the CPU first when both are ready to run.
    if hasattr(os, "nice"):
        os.nice(_WORKER_NICE_INCREMENT)


class LocalWorkGenerator:
    """Local proof-of-work source whose searches run in worker processes that it owns.

    `generate` only awaits the workers' results, so the event loop keeps running meanwhile.

    Each search runs as chunks of `chunk_iterations` nonces spread over `processes` workers,
    each worker on its own random range. Between chunks the search checks for cancellation,
    so a cancelled `generate` frees the workers within one chunk. Call `close()` (or
    `aclose()`) when done.
    """

    def __init__(
        self,
        processes: int = 1,
        chunk_iterations: int = DEFAULT_CHUNK_ITERATIONS,
        random_nonce: Callable[[], int] = lambda: secrets.randbits(64),
    ) -> None:
        if processes < 1:
            raise ValueError("processes must be at least 1")
        if chunk_iterations < 1:
            raise ValueError("chunk_iterations must be at least 1")
        self._processes = processes
        self._chunk_iterations = chunk_iterations
        self._random_nonce = random_nonce
        # "spawn" starts clean interpreters: forking a process that runs an event loop and
        # database threads can copy a lock in its held state and deadlock the child.
        self._executor = concurrent.futures.ProcessPoolExecutor(
            max_workers=processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_lower_worker_priority,
        )
        self._closed = False

    async def generate(self, root_hex: str, threshold: int) -> str:
        """Find a nonce whose work value for `root_hex` is at least `threshold`."""
        if self._closed:
            raise RuntimeError("The LocalWorkGenerator is closed.")
        _root_bytes(root_hex)
        _check_threshold(threshold)

        loop = asyncio.get_running_loop()
        # One random range per worker, so workers never try the same nonce twice.
        next_nonces = [self._random_nonce() & MAX_NONCE for _ in range(self._processes)]
        idle_ranges = set(range(self._processes))
        pending: dict[asyncio.Future[str | None], int] = {}
        try:
            while True:
                for range_index in idle_ranges:
                    future = loop.run_in_executor(
                        self._executor,
                        search_work_chunk,
                        root_hex,
                        threshold,
                        next_nonces[range_index],
                        self._chunk_iterations,
                    )
                    pending[future] = range_index
                    next_nonces[range_index] = (
                        next_nonces[range_index] + self._chunk_iterations
                    ) & MAX_NONCE
                idle_ranges.clear()

                done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for future in done:
                    idle_ranges.add(pending.pop(future))
                    found = future.result()
                    if found is not None:
                        return found
        finally:
            # Chunks that have not started are dropped; running ones end within one chunk.
            for future in pending:
                future.cancel()

    def close(self, wait: bool = True) -> None:
        """Stop the worker processes, waiting for running chunks to end unless `wait` is False."""
        self._closed = True
        self._executor.shutdown(wait=wait, cancel_futures=True)

    async def aclose(self) -> None:
        """Stop the worker processes without blocking the event loop."""
        await asyncio.to_thread(self.close)
