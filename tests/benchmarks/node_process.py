"""The sandbox servers in a process of their own, as the real node and APIs run apart from the bot.

`SandboxProcess` starts `python -m tests.benchmarks.node_process`, sends it the operator seed,
the funding and the API keys on standard input (never on the command line, where `ps` would
show them), and reads back the URLs. It always runs the Banano node. With `players` above 0
it also runs the stats API and Yunite sandboxes, where the data set's players 1 to `players`
are linked and gain one kill a minute. Every server listens on 127.0.0.1 only, and the
process stops when its standard input closes.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from dataclasses import dataclass
from types import TracebackType

import structlog

from core.banano.keys import KeyPair
from core.sandbox.banano_node import SandboxBananoNode
from core.sandbox.stats_server import SandboxStats
from core.sandbox.yunite_server import SandboxYunite
from tests.benchmarks.dataset_rows import FIRST_DISCORD_ID, epic_account_id


@dataclass
class SandboxUrls:
    """Where the sandbox servers listen; the API URLs are empty without players."""

    node: str
    stats: str
    yunite: str


class SandboxProcess:
    """A running sandbox server process; use it as an async context manager."""

    def __init__(
        self,
        operator_seed: str,
        funding_raw: int,
        work_threshold: int,
        *,
        players: int = 0,
        stats_key: str = "",
        yunite_key: str = "",
        guild_id: int = 0,
    ) -> None:
        self._request = {
            "seed": operator_seed,
            "funding_raw": str(funding_raw),
            "work_threshold": f"{work_threshold:016x}",
            "players": players,
            "stats_key": stats_key,
            "yunite_key": yunite_key,
            "guild_id": guild_id,
        }
        self._process: asyncio.subprocess.Process | None = None
        self.urls = SandboxUrls("", "", "")

    def __repr__(self) -> str:
        return f"SandboxProcess(urls={self.urls!r})"

    @property
    def pid(self) -> int | None:
        """The process id, while it runs."""
        return None if self._process is None else self._process.pid

    async def __aenter__(self) -> SandboxProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.benchmarks.node_process",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        self._process = process
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.write(json.dumps(self._request).encode() + b"\n")
        await process.stdin.drain()
        line = await asyncio.wait_for(process.stdout.readline(), timeout=300)
        if not line:
            raise RuntimeError("the sandbox process exited before it started")
        self.urls = SandboxUrls(**json.loads(line))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        process = self._process
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), timeout=30)
        except TimeoutError:
            process.kill()
            await process.wait()


async def _serve() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    request = json.loads(await reader.readline())

    node = SandboxBananoNode(work_threshold=int(request["work_threshold"], 16))
    urls = SandboxUrls(await node.start(), "", "")
    operator = KeyPair.from_seed(request["seed"], 0)
    node.fund(operator.address, int(request["funding_raw"]), key=operator)

    servers: list[SandboxStats | SandboxYunite] = []
    players = int(request["players"])
    if players > 0:
        stats = SandboxStats(request["stats_key"])
        yunite = SandboxYunite(request["yunite_key"], int(request["guild_id"]))
        rng = random.Random(players)
        for index in range(1, players + 1):
            account = epic_account_id(index)
            stats.add_player(account, rng.randint(1_000, 20_000), kills_per_minute=1.0)
            yunite.add_player(FIRST_DISCORD_ID + index, account)
        urls.stats = await stats.start()
        urls.yunite = await yunite.start()
        servers = [stats, yunite]

    print(json.dumps(urls.__dict__), flush=True)
    try:
        # End of input: the parent closed the pipe or exited.
        while await reader.readline():
            pass
    finally:
        for server in servers:
            await server.stop()
        await node.stop()


if __name__ == "__main__":
    asyncio.run(_serve())
