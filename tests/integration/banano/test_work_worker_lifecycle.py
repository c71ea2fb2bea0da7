"""Worker processes of the local work search do not outlive a killed parent."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
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
