"""The whole faucet process on loopback, configured like production, for security and load runs.

`full_faucet()` starts the sandbox Banano node, Yunite, stats API and Discord, loads the
shipped configuration with every secret set to a distinctive value, opens the services in
live mode as `pay2slay run` does and serves the side web server through `Runtime`. Players
are registered, linked in Yunite and in the Discord sandbox's guild, so the OAuth sign-in
and settlement both have real work to do.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import yarl

from bot.runtime import Runtime, Services, open_services
from core.banano.address import encode_address
from core.banano.keys import KeyPair
from core.config import Settings, load_settings
from core.observability import Metrics
from core.sandbox.banano_node import SandboxBananoNode
from core.sandbox.discord_server import SandboxDiscord
from core.sandbox.stats_server import SandboxStats
from core.sandbox.yunite_server import SandboxYunite

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
GUILD_ID = 410_000_000_000_000_001
FIRST_PLAYER_ID = 410_000_000_000_001_000
CLIENT_ID = "410000000000000009"
# The sign-in never follows this redirect: the test reads the code and state from it.
REDIRECT_URI = "http://127.0.0.1:3000/auth/discord/callback"
SANDBOX_WORK_THRESHOLD = "fff0000000000000"
OPERATOR_FUNDING_RAW = 1_000_000 * 10**29


class MovableClock:
    """A clock the campaign moves by hand, starting at the real time."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass(frozen=True)
class FaucetSecrets:
    """Every secret the faucet is configured with, each distinctive enough to search logs for."""

    yunite_api_key: str
    stats_api_key: str
    discord_client_secret: str
    discord_bot_token: str
    operator_seed: str
    session_secret: str
    metrics_token: str

    @classmethod
    def generate(cls) -> FaucetSecrets:
        """Make fresh secrets; the hex ones carry a marker that no other text contains."""
        return cls(
            yunite_api_key=f"yunite-secret-{secrets.token_hex(12)}",
            stats_api_key=f"stats-secret-{secrets.token_hex(12)}",
            discord_client_secret=f"client-secret-{secrets.token_hex(12)}",
            discord_bot_token=f"bot-token-{secrets.token_hex(16)}",
            operator_seed=secrets.token_hex(32),
            session_secret=f"session-secret-{secrets.token_hex(16)}",
            metrics_token=f"metrics-token-{secrets.token_hex(12)}",
        )

    def named(self) -> dict[str, str]:
        """Return every secret by name, and the operator's private key derived from the seed."""
        values = dict(vars(self))
        values["operator private key"] = KeyPair.from_seed(self.operator_seed, 0).private_key.hex()
        return values


@dataclass
class FullFaucet:
    """The running faucet and the sandboxes around it."""

    settings: Settings
    services: Services
    runtime: Runtime
    base_url: str
    secrets: FaucetSecrets
    clock: MovableClock
    node: SandboxBananoNode
    yunite: SandboxYunite
    stats: SandboxStats
    discord: SandboxDiscord
    player_ids: list[int]


class AllMembers:
    """Membership as the bot's gateway cache would report it: every registered player is in."""

    def __init__(self, member_ids: list[int]) -> None:
        self._member_ids = frozenset(member_ids)

    async def is_member(self, discord_id: int) -> bool | None:
        """Return whether the user is one of the campaign's players."""
        return discord_id in self._member_ids


def _environment(
    faucet_secrets: FaucetSecrets, workdir: Path, urls: dict[str, str]
) -> dict[str, str]:
    return {
        "YUNITE_API_KEY": faucet_secrets.yunite_api_key,
        "FORTNITE_API_KEY": faucet_secrets.stats_api_key,
        "DISCORD_CLIENT_ID": CLIENT_ID,
        "DISCORD_CLIENT_SECRET": faucet_secrets.discord_client_secret,
        "P2S_DISCORD_BOT_TOKEN": faucet_secrets.discord_bot_token,
        "P2S_OPERATOR_SEED": faucet_secrets.operator_seed,
        "P2S_SESSION_SECRET": faucet_secrets.session_secret,
        "P2S_METRICS_TOKEN": faucet_secrets.metrics_token,
        "P2S_INTEGRATIONS__DRY_RUN": "false",
        "P2S_INTEGRATIONS__NODE_RPC": urls["node"],
        "P2S_INTEGRATIONS__YUNITE_API_URL": urls["yunite"],
        "P2S_INTEGRATIONS__FORTNITE_API_URL": urls["stats"],
        "P2S_INTEGRATIONS__DISCORD_API_URL": urls["discord_api"],
        "P2S_INTEGRATIONS__DISCORD_AUTHORIZE_URL": urls["discord_authorize"],
        "P2S_INTEGRATIONS__DISCORD_REDIRECT_URI": REDIRECT_URI,
        "P2S_INTEGRATIONS__DISCORD_GUILD_ID": str(GUILD_ID),
        "P2S_INTEGRATIONS__YUNITE_GUILD_ID": str(GUILD_ID),
        "P2S_INTEGRATIONS__YUNITE_CACHE_SECONDS": "0",
        "P2S_INTEGRATIONS__MIN_OPERATOR_BALANCE_BAN": "10",
        "P2S_INTEGRATIONS__RATE_LIMITS__FORTNITE_PER_MIN": "6000",
        "P2S_INTEGRATIONS__ABUSE_HEURISTICS__KILL_RATE_PER_MIN": "1000000",
        "P2S_INTEGRATIONS__BANANO__SIGNER": "local",
        "P2S_INTEGRATIONS__BANANO__WORK_SOURCES": "[node]",
        "P2S_INTEGRATIONS__BANANO__WORK_THRESHOLD": SANDBOX_WORK_THRESHOLD,
        "P2S_INTEGRATIONS__DATABASE__URL": f"sqlite+aiosqlite:///{workdir / 'faucet.db'}",
        "P2S_INTEGRATIONS__DATABASE__MIGRATE_ON_START": "true",
        "P2S_INTEGRATIONS__SERVER__HOST": "127.0.0.1",
        "P2S_INTEGRATIONS__SERVER__PORT": "0",
        "P2S_PAYOUT__DAILY_PAYOUT_CAP": "1000",
        "P2S_PAYOUT__WEEKLY_PAYOUT_CAP": "1000",
    }


async def _start(
    server: SandboxBananoNode | SandboxYunite | SandboxStats | SandboxDiscord,
    stack: AsyncExitStack,
) -> str:
    url = await server.start()
    stack.push_async_callback(server.stop)
    return url


@asynccontextmanager
async def full_faucet(workdir: Path, *, players: int = 5) -> AsyncIterator[FullFaucet]:
    """Run the faucet and its sandboxes until the block exits."""
    faucet_secrets = FaucetSecrets.generate()
    clock = MovableClock()
    async with AsyncExitStack() as stack:
        node = SandboxBananoNode(work_threshold=int(SANDBOX_WORK_THRESHOLD, 16))
        yunite = SandboxYunite(faucet_secrets.yunite_api_key, GUILD_ID)
        stats = SandboxStats(faucet_secrets.stats_api_key)
        discord = SandboxDiscord(CLIENT_ID, faucet_secrets.discord_client_secret, [REDIRECT_URI])
        urls = {
            "node": await _start(node, stack),
            "yunite": await _start(yunite, stack),
            "stats": await _start(stats, stack),
        }
        await _start(discord, stack)
        urls["discord_api"] = discord.api_base_url
        urls["discord_authorize"] = discord.authorize_url

        operator = KeyPair.from_seed(faucet_secrets.operator_seed, 0)
        node.fund(operator.address, OPERATOR_FUNDING_RAW, key=operator)
        player_ids = [FIRST_PLAYER_ID + index for index in range(players)]
        for index, discord_id in enumerate(player_ids):
            epic_account_id = f"{0xABC000 + index:032x}"
            yunite.add_player(discord_id, epic_account_id)
            stats.add_player(epic_account_id, kills=100 + index)
            discord.add_user(discord_id, f"player{index}", guild_ids=[GUILD_ID])

        settings = load_settings(CONFIG_DIR, _environment(faucet_secrets, workdir, urls))
        services = await open_services(
            settings, membership=AllMembers(player_ids), metrics=Metrics(), clock=clock
        )
        stack.push_async_callback(services.aclose)
        for index, discord_id in enumerate(player_ids):
            wallet = encode_address(bytes([index + 1]) * 32)
            await services.players.link_wallet(
                discord_id, wallet, services.operator_address, replace=False
            )
        await services.verification.verify_many(player_ids, "scheduled")

        runtime = Runtime(services)
        stack.push_async_callback(runtime.stop)
        base_url = await runtime.start_web_server()
        yield FullFaucet(
            settings=settings,
            services=services,
            runtime=runtime,
            base_url=base_url,
            secrets=faucet_secrets,
            clock=clock,
            node=node,
            yunite=yunite,
            stats=stats,
            discord=discord,
            player_ids=player_ids,
        )


@dataclass
class BrowserResponse:
    """What a browser got back: status, headers, body and the cookies set."""

    status: int
    headers: dict[str, str]
    text: str
    cookies: dict[str, str]


class Browser:
    """A browser from one loopback source address that keeps no cookie jar of its own.

    Each browser connects from its own address in 127.0.0.0/8, so the per-client rate limit
    of the OAuth routes counts each one as a different client. Every request goes to the
    faucet's 127.0.0.1 address.
    """

    def __init__(self, source_address: str) -> None:
        self.source_address = source_address
        self.cookies: dict[str, str] = {}

    async def get(
        self,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        cookies: dict[str, str] | None = None,
        encoded: bool = False,
    ) -> BrowserResponse:
        """GET `url` with this browser's cookies, or `cookies` when given; follow no redirect."""
        request_headers = dict(headers or {})
        sent = self.cookies if cookies is None else cookies
        if sent:
            request_headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in sent.items())
        connector = aiohttp.TCPConnector(local_addr=(self.source_address, 0))
        async with (
            aiohttp.ClientSession(
                connector=connector, cookie_jar=aiohttp.DummyCookieJar()
            ) as session,
            session.get(
                yarl.URL(url, encoded=encoded), headers=request_headers, allow_redirects=False
            ) as response,
        ):
            return BrowserResponse(
                status=response.status,
                headers={name: value for name, value in response.headers.items()},
                text=await response.text(errors="replace"),
                cookies={name: morsel.value for name, morsel in response.cookies.items()},
            )

    def keep(self, response: BrowserResponse) -> None:
        """Store the cookies a response set, as a browser would."""
        self.cookies.update(response.cookies)
