"""Proof-of-work validation and local search, including the event loop staying responsive."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator

import pytest

from core.banano.blocks import ZERO_HASH, build_receive, build_send
from core.banano.errors import InvalidWorkError, WorkGeneratorClosedError, WorkNotFoundError
from core.banano.keys import KeyPair
from core.banano.work import (
    FIRST_CHUNK_ITERATIONS,
    MAX_CHUNK_ITERATIONS,
    MAX_NONCE,
    MIN_CHUNK_ITERATIONS,
    LocalWorkGenerator,
    generate_work_local,
    is_valid_work,
    next_chunk_iterations,
    search_work_chunk,
    work_root,
    work_value,
)

ROOT = "E2FB233EF4554077A7BF1AA85851D5BF0B36965D2B0FB504B2BC778AB89917D3"
KEY = KeyPair.from_seed("AB" * 32, 0)
REPRESENTATIVE = "ban_1bananobh5rat99qfgt1ptpieie5swmoth87thi74qgbfrij7dcgjiij94xr"

# One valid nonce per 2**12 on average: quick to find, yet never found by accident.
EASY_THRESHOLD = 0xFFF0000000000000
# One valid nonce per 2**20. From nonce 0, the first valid nonce for ROOT is KNOWN_NONCE
# (1585879), found by trying every nonce before it.
EVENT_LOOP_THRESHOLD = 0xFFFFF00000000000
KNOWN_NONCE = "00000000001832d7"
# One valid nonce per 2**19. From nonce 0, the first valid nonce for ROOT is 143803.
ADAPT_THRESHOLD = 0xFFFFE00000000000
ADAPT_NONCE = "00000000000231bb"
# The work value would have to be 2**64 - 1 exactly.
IMPOSSIBLE_THRESHOLD = MAX_NONCE


@pytest.mark.parametrize(
    ("root", "work"),
    [("AB", "0" * 16), (ROOT, "0" * 15), (ROOT, "g" * 16), (ROOT, "0x" + "0" * 14)],
)
def test_work_value_rejects_malformed(root: str, work: str) -> None:
    with pytest.raises(InvalidWorkError):
        work_value(root, work)


@pytest.mark.parametrize("threshold", [-1, MAX_NONCE + 1, True, 1.5])
def test_is_valid_work_rejects_bad_threshold(threshold: object) -> None:
    with pytest.raises(InvalidWorkError):
        is_valid_work(ROOT, "0" * 16, threshold)  # type: ignore[arg-type]


def test_work_root_of_open_block() -> None:
    block = build_receive(KEY, ZERO_HASH, REPRESENTATIVE, 0, 1, ROOT)

    assert work_root(block) == KEY.public_key.hex().upper()


def test_work_root_of_later_block() -> None:
    block = build_send(KEY, ROOT, REPRESENTATIVE, 10, 1, REPRESENTATIVE)

    assert work_root(block) == ROOT


def test_generate_work_local_is_valid() -> None:
    work = generate_work_local(ROOT, EASY_THRESHOLD)

    assert len(work) == 16
    assert work == work.lower()
    assert is_valid_work(ROOT, work, EASY_THRESHOLD)


def test_generate_work_local_start_nonce() -> None:
    assert generate_work_local(ROOT, 0, start_nonce=42) == f"{42:016x}"


def test_generate_work_local_gives_up() -> None:
    with pytest.raises(WorkNotFoundError):
        generate_work_local(ROOT, IMPOSSIBLE_THRESHOLD, max_iterations=1000)


def test_search_wraps_after_max_nonce() -> None:
    # Pick a root where nonce 0 reaches a threshold that nonce 2**64 - 1 misses.
    for index in itertools.count():
        root = f"{index:064X}"
        last_value = work_value(root, f"{MAX_NONCE:016x}")
        first_value = work_value(root, "0" * 16)
        if first_value > last_value:
            break

    assert search_work_chunk(root, first_value, MAX_NONCE, 2) == "0" * 16
    assert search_work_chunk(root, first_value, MAX_NONCE, 1) is None


def test_search_rejects_bad_range() -> None:
    with pytest.raises(InvalidWorkError):
        search_work_chunk(ROOT, 0, MAX_NONCE + 1, 1)
    with pytest.raises(InvalidWorkError):
        search_work_chunk(ROOT, 0, 0, -1)


@pytest.fixture
async def generator() -> AsyncIterator[LocalWorkGenerator]:
    work_generator = LocalWorkGenerator(processes=1, chunk_iterations=1 << 16)
    yield work_generator
    await work_generator.aclose()


async def test_generator_finds_valid_work(generator: LocalWorkGenerator) -> None:
    work = await generator.generate(ROOT, EASY_THRESHOLD)

    assert is_valid_work(ROOT, work, EASY_THRESHOLD)


async def test_generator_rejects_bad_root(generator: LocalWorkGenerator) -> None:
    with pytest.raises(InvalidWorkError):
        await generator.generate("XYZ", EASY_THRESHOLD)


async def test_generator_event_loop_keeps_ticking() -> None:
    # A search of a known length: from nonce 0 the first valid nonce for ROOT is
    # KNOWN_NONCE, more than a million nonces away. A coroutine sleeping 10 ms per tick counts the
    # ticks that pass while the search is still running. A search that blocked the event
    # loop would let none pass. How many pass depends on the host, so the bound is loose;
    # tests/benchmarks/bench_banano_primitives.py measures the gaps between ticks.
    work_generator = LocalWorkGenerator(processes=1, random_nonce=lambda: 0)
    search = asyncio.create_task(work_generator.generate(ROOT, EVENT_LOOP_THRESHOLD))
    ticks_during_search = 0
    try:
        while not search.done():
            await asyncio.sleep(0.01)
            if not search.done():
                ticks_during_search += 1
        work = await search
    finally:
        await work_generator.aclose()

    assert work == KNOWN_NONCE
    assert ticks_during_search >= 5
    assert work_generator.worker_process_ids
    assert os.getpid() not in work_generator.worker_process_ids


@pytest.mark.parametrize("chunk_running", [False, True])
async def test_generator_close_during_search(chunk_running: bool) -> None:
    work_generator = LocalWorkGenerator(processes=1)
    search = asyncio.create_task(work_generator.generate(ROOT, IMPOSSIBLE_THRESHOLD))
    # The search submits its first chunk and waits while the worker process starts.
    await asyncio.sleep(0)
    # The generator signals no chunk's end, so the test polls for the first one.
    for _ in range(6000):
        if not chunk_running or work_generator.worker_process_ids:
            break
        await asyncio.sleep(0.01)
    assert work_generator.worker_process_ids or not chunk_running

    work_generator.close(wait=False)

    with pytest.raises(WorkGeneratorClosedError):
        await search
    await work_generator.aclose()


@pytest.mark.parametrize(
    ("target_chunk_seconds", "expected_iterations"),
    [
        # Every chunk takes longer than a nanosecond, so each halves the next one.
        (1e-9, MIN_CHUNK_ITERATIONS),
        # Every chunk takes far less than 1000 s, so each doubles the next. The valid nonce
        # is in the second chunk, so the size doubles twice.
        (1000.0, FIRST_CHUNK_ITERATIONS * 4),
    ],
)
async def test_generator_chunks_adapt(
    target_chunk_seconds: float, expected_iterations: int
) -> None:
    work_generator = LocalWorkGenerator(
        processes=1, random_nonce=lambda: 0, target_chunk_seconds=target_chunk_seconds
    )
    try:
        assert work_generator.chunk_iterations == FIRST_CHUNK_ITERATIONS
        work = await work_generator.generate(ROOT, ADAPT_THRESHOLD)
    finally:
        await work_generator.aclose()

    # Chunks of changing sizes cover the range without gaps, so the first valid nonce is found.
    assert work == ADAPT_NONCE
    assert work_generator.chunk_iterations == expected_iterations


async def test_generator_fixed_chunks_stay() -> None:
    work_generator = LocalWorkGenerator(processes=1, chunk_iterations=1 << 14)
    try:
        await work_generator.generate(ROOT, EASY_THRESHOLD)
    finally:
        await work_generator.aclose()

    assert work_generator.chunk_iterations == 1 << 14


@pytest.mark.parametrize(
    ("iterations", "elapsed_seconds", "expected"),
    [
        (1 << 16, 0.05, 1 << 17),
        (1 << 16, 0.2, 1 << 15),
        (1 << 16, 0.1, 1 << 16),
        (1 << 16, 10.0, 1 << 15),
        (1 << 16, 0.0, 1 << 17),
        (1 << 16, 0.08, int((1 << 16) * 1.25)),
        (MIN_CHUNK_ITERATIONS, 5.0, MIN_CHUNK_ITERATIONS),
        (MAX_CHUNK_ITERATIONS, 0.001, MAX_CHUNK_ITERATIONS),
    ],
)
def test_next_chunk_iterations(iterations: int, elapsed_seconds: float, expected: int) -> None:
    assert next_chunk_iterations(iterations, elapsed_seconds, 0.1) == expected


async def test_generator_cancel_frees_worker(generator: LocalWorkGenerator) -> None:
    search = asyncio.create_task(generator.generate(ROOT, IMPOSSIBLE_THRESHOLD))
    await asyncio.sleep(0.5)
    search.cancel()

    with pytest.raises(asyncio.CancelledError):
        await search

    # With one worker process, this search can only finish once the cancelled one let go.
    work = await generator.generate(ROOT, EASY_THRESHOLD)
    assert is_valid_work(ROOT, work, EASY_THRESHOLD)


async def test_generator_closed_rejects() -> None:
    work_generator = LocalWorkGenerator(processes=1)
    await work_generator.aclose()

    with pytest.raises(WorkGeneratorClosedError):
        await work_generator.generate(ROOT, EASY_THRESHOLD)


async def test_generator_two_processes() -> None:
    work_generator = LocalWorkGenerator(processes=2, chunk_iterations=1 << 14)
    try:
        results = await asyncio.gather(
            work_generator.generate(ROOT, EASY_THRESHOLD),
            work_generator.generate(ZERO_HASH, EASY_THRESHOLD),
        )
    finally:
        await work_generator.aclose()

    assert is_valid_work(ROOT, results[0], EASY_THRESHOLD)
    assert is_valid_work(ZERO_HASH, results[1], EASY_THRESHOLD)


@pytest.mark.parametrize(("processes", "chunk_iterations"), [(0, 1), (1, 0)])
def test_generator_rejects_bad_settings(processes: int, chunk_iterations: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        LocalWorkGenerator(processes=processes, chunk_iterations=chunk_iterations)


def test_generator_rejects_bad_target() -> None:
    with pytest.raises(ValueError, match="positive"):
        LocalWorkGenerator(target_chunk_seconds=0.0)
