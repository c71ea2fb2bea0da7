"""Proof-of-work validation and local search, including the event loop staying responsive."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator

import pytest

from core.banano.blocks import ZERO_HASH, build_receive, build_send
from core.banano.errors import InvalidWorkError, WorkNotFoundError
from core.banano.keys import KeyPair
from core.banano.work import (
    MAX_NONCE,
    LocalWorkGenerator,
    generate_work_local,
    is_valid_work,
    search_work_chunk,
    work_root,
    work_value,
)

ROOT = "E2FB233EF4554077A7BF1AA85851D5BF0B36965D2B0FB504B2BC778AB89917D3"
KEY = KeyPair.from_seed("AB" * 32, 0)
REPRESENTATIVE = "ban_1bananobh5rat99qfgt1ptpieie5swmoth87thi74qgbfrij7dcgjiij94xr"

# One valid nonce per 2**12 on average: quick to find, yet never found by accident.
EASY_THRESHOLD = 0xFFF0000000000000
# One valid nonce per 2**22 on average: about a second of hashing in one worker process.
EVENT_LOOP_THRESHOLD = 0xFFFFFC0000000000
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
    # Default chunk size, as in production. The check is the largest gap between ticks of a
    # coroutine that sleeps 10 ms per tick while the search runs in the worker process.
    work_generator = LocalWorkGenerator(processes=1)
    max_gap_seconds = 0.0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal max_gap_seconds
        last_tick = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            max_gap_seconds = max(max_gap_seconds, now - last_tick)
            last_tick = now

    ticker_task = asyncio.create_task(ticker())
    try:
        work = await work_generator.generate(ROOT, EVENT_LOOP_THRESHOLD)
    finally:
        stop.set()
        await ticker_task
        await work_generator.aclose()

    assert is_valid_work(ROOT, work, EVENT_LOOP_THRESHOLD)
    assert max_gap_seconds < 0.1


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

    with pytest.raises(RuntimeError):
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
