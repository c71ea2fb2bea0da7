"""Worker processes of the local work search do not outlive a killed parent."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

# The child prints its workers' process ids once a search is under way, then keeps searching
# at a threshold it will not reach for hours, so the workers are busy when the signal lands.
CHILD = textwrap.dedent(
    """
    import asyncio
    from core.banano.work import LocalWorkGenerator


    async def main() -> None:
        generator = LocalWorkGenerator(processes=2)
        search = asyncio.ensure_future(generator.generate("00" * 32, 0xFFFFFFFFFFFFFFFF))
        while len(generator._worker_process_ids) < 2:
            await asyncio.sleep(0.05)
        print(" ".join(str(pid) for pid in sorted(generator._worker_process_ids)), flush=True)
        try:
            await search
        except asyncio.CancelledError:
            pass

    if __name__ == "__main__":
        asyncio.run(main())
    """
)
WAIT_SECONDS = 60.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose; its parent has not reaped it yet.
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "State:\tZ" not in status.read_text()


def _wait_until_gone(pids: list[int]) -> list[int]:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        alive = [pid for pid in pids if _alive(pid)]
        if not alive:
            return []
        time.sleep(0.2)
    return [pid for pid in pids if _alive(pid)]


def _start_child(tmp_path: Path) -> tuple[subprocess.Popen[str], list[int]]:
    script = tmp_path / "child.py"
    script.write_text(CHILD, encoding="utf-8")
    child = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
        start_new_session=True,
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    workers = [int(pid) for pid in line.split()]
    return child, workers


@pytest.mark.skipif(not Path("/proc").exists(), reason="needs /proc to inspect processes")
def test_workers_exit_after_parent_killed(tmp_path: Path) -> None:
    child, workers = _start_child(tmp_path)
    assert len(workers) == 2

    child.kill()
    child.wait()

    assert _wait_until_gone(workers) == []


# This child starts a search and is killed at once, while its worker may still be starting.
STARTING_CHILD = textwrap.dedent(
    """
    import asyncio
    import sys
    from core.banano.work import LocalWorkGenerator


    async def main() -> None:
        generator = LocalWorkGenerator(processes=1)
        search = asyncio.ensure_future(generator.generate("00" * 32, 0xFFFFFFFFFFFFFFFF))
        await asyncio.sleep(0)
        print("started", flush=True)
        await search

    if __name__ == "__main__":
        asyncio.run(main())
    """
)
# Marks the processes of one test in their environment, which spawned workers inherit.
WORKER_TAG_VARIABLE = "PAY2SLAY_TEST_WORKER_TAG"


def _tagged_processes(tag: str) -> list[int]:
    marker = f"{WORKER_TAG_VARIABLE}={tag}".encode()
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker in environ.read_bytes().split(b"\0"):
                found.append(int(environ.parent.name))
        except OSError:
            continue
    return found


@pytest.mark.skipif(not Path("/proc").exists(), reason="needs /proc to inspect processes")
def test_worker_started_after_parent_killed_exits(tmp_path: Path) -> None:
    """A worker whose parent died while it was starting does not stay behind."""
    script = tmp_path / "starting_child.py"
    script.write_text(STARTING_CHILD, encoding="utf-8")
    tag = uuid.uuid4().hex
    for _ in range(5):
        child = subprocess.Popen(
            [sys.executable, str(script)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[3],
            start_new_session=True,
            env={**os.environ, WORKER_TAG_VARIABLE: tag},
        )
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "started"
        child.kill()
        child.wait()
    left = _wait_until_gone(_tagged_processes(tag))
    for pid in left:
        # A process can end between the listing and the kill.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert left == []


def test_worker_of_a_dead_parent_exits_at_start() -> None:
    """The worker set-up exits at once when its parent is no longer the one that started it."""
    code = "from core.banano.work import _prepare_worker; _prepare_worker(1); print('kept')"
    finished = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
        timeout=60,
        check=False,
    )
    assert finished.returncode == 0
    assert "kept" not in finished.stdout
