"""Starting settlement processes from a campaign, reading their events and killing them.

Children are forked by a multiprocessing fork server that has already imported the
settlement modules, so a new life starts in milliseconds instead of the second a fresh
interpreter needs. Each child reports to the campaign over a pipe
(`settle_child.PipeChannel`): it sends an event and waits for the campaign's reply, so the
campaign can SIGKILL it at exactly that point.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess
from typing import Any

from tests.reliability.settle_child import child_process_main

# A child's entry point: it gets its options and its end of the pipe.
ChildTarget = Callable[[Any, Connection], None]

# A child that reports nothing for this long is stuck; the campaign records it as an error.
STUCK_SECONDS = 60.0
REAP_SECONDS = 30.0


@dataclass
class ChildEvent:
    """One event a child reported."""

    name: str
    detail: str


class Child:
    """One running settlement process and the campaign's end of its pipe."""

    def __init__(self, process: BaseProcess, connection: Connection) -> None:
        self.process = process
        self._connection = connection
        self.killed = False

    @property
    def pid(self) -> int:
        """The child's process id."""
        assert self.process.pid is not None
        return self.process.pid

    async def next_event(self, wait_seconds: float = STUCK_SECONDS) -> ChildEvent | None:
        """Return the next event, or None once the child has exited.

        Raises TimeoutError when nothing arrives within `wait_seconds`.
        """
        ready = await asyncio.to_thread(self._connection.poll, max(wait_seconds, 0.0))
        if not ready:
            raise TimeoutError
        try:
            name, detail = self._connection.recv()
        except (EOFError, OSError):
            return None
        return ChildEvent(str(name), str(detail))

    def go(self) -> None:
        """Let the child continue after its last event."""
        # The child may have died in the meantime. Its exit code, read when it is reaped,
        # shows how.
        with contextlib.suppress(OSError):
            self._connection.send(True)

    def kill(self) -> bool:
        """Send SIGKILL: the process ends at once, with no clean-up of any kind.

        Returns False when the child had already ended by itself. The fork server is its
        parent and reaps it at once, so its process id can be gone before `reap` runs. `reap`
        still returns its exit code.
        """
        if not self.killed:
            # The process id of a child that has already been reaped may belong to another
            # process by now, so it is checked first.
            if not self.process.is_alive():
                return False
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                return False
            self.killed = True
        return True

    async def reap(self) -> int:
        """Wait for the process to end and return its exit code (-9 after `kill`)."""
        await asyncio.to_thread(self.process.join, REAP_SECONDS)
        if self.process.exitcode is None:
            self.kill()
            await asyncio.to_thread(self.process.join, REAP_SECONDS)
        self._connection.close()
        exitcode = self.process.exitcode
        return -1 if exitcode is None else exitcode


# A campaign run with `python -m` is imported again in each child as its main module, so the
# modules it imports are preloaded too. The campaign modules themselves are not: importing
# one again as the main module after preloading it would run it twice.
PRELOADED_MODULES = [
    "tests.reliability.settle_child",
    "tests.reliability.replica_child",
    "tests.reliability.invariants",
    "tests.reliability.world",
    "tests.reliability.databases",
    "core.sandbox.banano_node",
]


class ChildLauncher:
    """Starts settlement children from a fork server that preloads the settlement modules."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("forkserver")
        assert isinstance(context, ForkServerContext)
        context.set_forkserver_preload(PRELOADED_MODULES)
        self._context = context

    def start(self, options: object, target: ChildTarget = child_process_main) -> Child:
        """Start one child running `target(options, pipe)`, by default a settlement child."""
        parent_end, child_end = self._context.Pipe()
        process = self._context.Process(target=target, args=(options, child_end), daemon=True)
        process.start()
        child_end.close()
        return Child(process, parent_end)
