"""The campaign's child handling when a child ends before the campaign kills it."""

from __future__ import annotations

import asyncio
import os

from tests.reliability.children import ChildLauncher
from tests.reliability.short_children import send_one_event_and_exit, send_one_event_and_wait


async def _wait_until_gone(pid: int) -> None:
    # The fork server, not this process, is the child's parent and reaps it.
    for _ in range(500):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"child {pid} was still there after 5 s")


async def test_kill_after_child_exited() -> None:
    child = ChildLauncher().start("life 1", target=send_one_event_and_exit)
    event = await child.next_event(wait_seconds=30.0)
    assert event is not None
    assert (event.name, event.detail) == ("started", "life 1")
    await _wait_until_gone(child.pid)

    assert child.kill() is False
    assert child.killed is False
    assert await child.reap() == 0


async def test_kill_running_child() -> None:
    child = ChildLauncher().start("life 2", target=send_one_event_and_wait)
    event = await child.next_event(wait_seconds=30.0)
    assert event is not None
    assert child.kill() is True
    assert child.killed is True
    assert await child.reap() == -9
