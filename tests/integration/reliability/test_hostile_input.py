"""Hostile input to every parser and every client of an external API: typed errors only.

Each parser gets random text or JSON and mutated copies of real replies (tests/fixtures).
Each HTTP client gets replies of random status, shape and size: the node client from a
scripted server over loopback, the other clients through respx. The only exceptions allowed
are the typed errors each function documents; anything else fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from core.banano.address import check_payout_destination, decode_address, encode_address
from core.banano.blocks import StateBlock
from core.banano.errors import InvalidAddressError, InvalidAmountError, InvalidBlockError
from core.banano.rpc import NodeClient, RetryPolicy
from core.banano.rpc_errors import NodeError
from core.banano.rpc_replies import (
    parse_account_history,
    parse_account_info,
    parse_block_info,
    parse_receivable,
)
from core.banano.units import parse_ban, parse_raw
from core.config import Settings, load_settings
from core.config.errors import ConfigError
from core.errors import Pay2SlayError
from core.integrations.discord_oauth import (
    DiscordOAuthClient,
    OAuthError,
    OAuthToken,
    parse_guild_ids,
    parse_token,
    parse_user,
)
from core.integrations.fortnite import (
    StatsClient,
    StatsError,
    StatsReading,
    StatsState,
    extract_lifetime_kills,
)
from core.integrations.http import MalformedResponseError, seconds_until_reset
from core.integrations.rate_limit import RateLimiter
from core.integrations.yunite import YuniteClient, YuniteError, parse_links_response
from core.services.sessions import CookieSigner, issue_session, read_session
from tests.reliability.hostile import (
    HOSTILE_TEXT,
    HTTP_STATUSES,
    JSON_VALUES,
    json_bodies,
    load_fixture,
    mutated,
)
from tests.unit.banano_rpc.helpers_rpc import Reply, ScriptedNode

CONFIG_DIR = Path(__file__).resolve().parents[3] / "configs"
API_URL = "http://127.0.0.1:9"
GUILD_ID = 400_000_000_000_000_001
EPIC_ID = "8f2b6c1d3e4a4b5c9d0e1f2a3b4c5d6e"
VALID_ADDRESS = encode_address(bytes(range(32)))
BLOCK_HASH = "E2FB233EF4554077A7BF1AA85851D5BF0B36965D2B0FB504B2BC778AB89917D3"

PARSER_EXAMPLES = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
CLIENT_EXAMPLES = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


async def no_sleep(seconds: float) -> None:
    return None


@dataclass(frozen=True)
class Outcome:
    """What a call did: returned `value`, or raised a typed error with `message`."""

    value: object = None
    message: str | None = None

    @property
    def raised(self) -> bool:
        return self.message is not None


def outcome_of(call: Callable[[], object], error_type: type[Pay2SlayError]) -> Outcome:
    """Run `call`, turning the typed error it may raise into an outcome; others propagate."""
    try:
        return Outcome(value=call())
    except error_type as error:
        return Outcome(message=error.safe_message)


async def async_outcome_of(call: Awaitable[object], error_type: type[Pay2SlayError]) -> Outcome:
    """Await `call`, turning the typed error it may raise into an outcome; others propagate."""
    try:
        return Outcome(value=await call)
    except error_type as error:
        return Outcome(message=error.safe_message)


# Addresses and amounts.


def near_addresses() -> st.SearchStrategy[str]:
    """Valid addresses with one character changed, cut or added."""
    position = st.integers(0, len(VALID_ADDRESS) - 1)
    changed = st.tuples(position, st.characters()).map(
        lambda change: VALID_ADDRESS[: change[0]] + change[1] + VALID_ADDRESS[change[0] + 1 :]
    )
    cut = position.map(lambda index: VALID_ADDRESS[:index])
    return st.one_of(changed, cut, HOSTILE_TEXT.map(lambda text: VALID_ADDRESS + text))


@PARSER_EXAMPLES
@given(st.one_of(st.text(max_size=120), near_addresses(), HOSTILE_TEXT))
def test_address_parsers_raise_typed_errors(text: str) -> None:
    for parse in (decode_address, lambda value: check_payout_destination(value, VALID_ADDRESS)):
        outcome = outcome_of(functools.partial(parse, text), InvalidAddressError)
        assert outcome.message != ""


@PARSER_EXAMPLES
@given(
    st.one_of(
        st.text(max_size=120),
        HOSTILE_TEXT,
        st.integers(min_value=-(2**200), max_value=2**200),
        st.floats(),
        st.decimals(),
        st.none(),
        st.booleans(),
    )
)
def test_amount_parsers_raise_typed_errors(value: Any) -> None:
    for parse in (parse_ban, parse_raw):
        outcome = outcome_of(functools.partial(parse, value), InvalidAmountError)
        assert outcome.message != ""
        if not outcome.raised:
            assert isinstance(outcome.value, int)
            assert 0 <= outcome.value < 2**128


# Node replies and blocks.


@PARSER_EXAMPLES
@given(
    st.one_of(
        mutated(load_fixture("banano/block_info.json")),
        mutated(load_fixture("banano/account_info.json")),
        mutated(load_fixture("banano/receivable.json")),
        JSON_VALUES,
    )
)
def test_node_reply_parsers_raise_typed_errors(reply: Any) -> None:
    if not isinstance(reply, dict):
        reply = {"value": reply}
    parsers = (
        parse_account_info,
        lambda body: parse_block_info(body, BLOCK_HASH),
        parse_receivable,
        parse_account_history,
    )
    for parse in parsers:
        assert outcome_of(functools.partial(parse, reply), NodeError).message != ""


@PARSER_EXAMPLES
@given(st.one_of(mutated(load_fixture("banano/block_info.json")["contents"]), JSON_VALUES))
def test_block_parsers_raise_typed_errors(contents: Any) -> None:
    from_rpc = outcome_of(lambda: StateBlock.from_rpc_json(contents), InvalidBlockError)
    from_text = outcome_of(
        lambda: StateBlock.from_json_text(json.dumps(contents)), InvalidBlockError
    )

    assert from_rpc.message != ""
    assert from_text.message != ""


async def call_node(body: bytes, status: int) -> None:
    server = ScriptedNode()
    url = await server.start()
    server.respond(Reply(status, body))
    try:
        async with NodeClient(
            url,
            timeout_seconds=2,
            read_retry=RetryPolicy(attempts=1, base_delay_seconds=0, max_delay_seconds=0),
            sleep=no_sleep,
        ) as node:
            calls = (
                node.account_info(VALID_ADDRESS),
                node.block_info(BLOCK_HASH),
                node.account_history(VALID_ADDRESS, 10),
                node.receivable(VALID_ADDRESS, 10),
                node.work_generate(BLOCK_HASH, "fffffff800000000"),
                node.send("A1" * 32, VALID_ADDRESS, VALID_ADDRESS, 10**29, "a" * 32),
            )
            for call in calls:
                assert (await async_outcome_of(call, NodeError)).message != ""
    finally:
        await server.stop()


@CLIENT_EXAMPLES
@given(json_bodies(load_fixture("banano/block_info.json")), HTTP_STATUSES)
def test_node_client_raises_node_errors(body: bytes, status: int) -> None:
    asyncio.run(call_node(body, status))


# Yunite, the stats API and Discord OAuth.


@PARSER_EXAMPLES
@given(st.one_of(mutated(load_fixture("yunite/links_mixed.json")), JSON_VALUES))
def test_yunite_parser_raises_typed_errors(body: Any) -> None:
    requested = [400000000000000001, 400000000000000002, 400000000000000003]
    try:
        links = parse_links_response(body, requested)
    except MalformedResponseError:
        return
    assert set(links) == set(requested)


async def call_yunite(body: bytes, status: int) -> None:
    async with httpx.AsyncClient() as http:
        client = YuniteClient(http, API_URL, SecretStr("yunite-key-0123456789"), GUILD_ID, 0)
        with respx.mock(assert_all_called=False) as router:
            router.route().mock(return_value=httpx.Response(status, content=body))
            requested = [400000000000000001, 400000000000000002]
            outcome = await async_outcome_of(client.links_for(requested), YuniteError)
    assert outcome.message != ""
    if not outcome.raised:
        assert isinstance(outcome.value, dict)
        assert set(outcome.value) == set(requested)


@CLIENT_EXAMPLES
@given(json_bodies(load_fixture("yunite/links_mixed.json")), HTTP_STATUSES)
def test_yunite_client_raises_yunite_errors(body: bytes, status: int) -> None:
    asyncio.run(call_yunite(body, status))


@PARSER_EXAMPLES
@given(st.one_of(mutated(load_fixture("fortnite/stats_br_v2_lifetime.json")), JSON_VALUES))
def test_stats_parser_raises_typed_errors(body: Any) -> None:
    try:
        kills = extract_lifetime_kills(body, EPIC_ID)
    except MalformedResponseError:
        return
    assert isinstance(kills, int)
    assert kills >= 0


async def call_stats(body: bytes, status: int, retry_after: str) -> None:
    async with httpx.AsyncClient() as http:
        limiter = RateLimiter(6000, sleep=no_sleep)
        client = StatsClient(
            http,
            API_URL,
            SecretStr("stats-key-0123456789"),
            limiter,
            sleep=no_sleep,
            max_rate_limit_wait_seconds=0,
        )
        headers = {"Retry-After": retry_after}
        with respx.mock(assert_all_called=False) as router:
            router.route().mock(return_value=httpx.Response(status, content=body, headers=headers))
            outcome = await async_outcome_of(client.lifetime_kills(EPIC_ID), StatsError)
    assert outcome.message != ""
    if not outcome.raised:
        reading = outcome.value
        assert isinstance(reading, StatsReading)
        assert isinstance(reading.state, StatsState)
        if reading.state is StatsState.OK:
            assert reading.kills is not None
            assert reading.kills >= 0


@CLIENT_EXAMPLES
@given(
    json_bodies(load_fixture("fortnite/stats_br_v2_lifetime.json")),
    HTTP_STATUSES,
    st.one_of(st.text(max_size=30).filter(lambda text: text.isascii()), st.just("5")),
)
def test_stats_client_raises_stats_errors(body: bytes, status: int, retry_after: str) -> None:
    if any(character in retry_after for character in "\r\n\x00"):
        retry_after = "1"
    asyncio.run(call_stats(body, status, retry_after))


@PARSER_EXAMPLES
@given(
    st.one_of(
        mutated(load_fixture("discord/oauth_token.json")),
        mutated(load_fixture("discord/users_me.json")),
        JSON_VALUES,
    )
)
def test_oauth_parsers_raise_typed_errors(body: Any) -> None:
    for parse in (parse_token, parse_user, parse_guild_ids):
        with contextlib.suppress(MalformedResponseError):
            parse(body)


async def call_discord(body: bytes, status: int) -> None:
    async with httpx.AsyncClient() as http:
        client = DiscordOAuthClient(
            http,
            f"{API_URL}/api/v10",
            f"{API_URL}/oauth2/authorize",
            "300000000000000001",
            SecretStr("client-secret-0123456789"),
            "http://127.0.0.1:3000/auth/discord/callback",
            ["identify", "guilds"],
        )
        token = OAuthToken(SecretStr("access"), "Bearer", 600, frozenset({"identify", "guilds"}))
        with respx.mock(assert_all_called=False) as router:
            router.route().mock(return_value=httpx.Response(status, content=body))
            for call in (
                client.exchange_code("code"),
                client.current_user(token),
                client.user_guild_ids(token),
            ):
                assert (await async_outcome_of(call, OAuthError)).message != ""


@CLIENT_EXAMPLES
@given(json_bodies(load_fixture("discord/users_me_guilds.json")), HTTP_STATUSES)
def test_discord_client_raises_oauth_errors(body: bytes, status: int) -> None:
    asyncio.run(call_discord(body, status))


@PARSER_EXAMPLES
@given(st.dictionaries(st.sampled_from(["Retry-After", "X-RateLimit-Reset", "Date"]), st.text()))
def test_rate_limit_headers_never_raise(headers: dict[str, str]) -> None:
    wait = seconds_until_reset(headers, datetime(2026, 1, 1, tzinfo=UTC))

    assert wait is None or wait >= 0


# Large and deep bodies, once each.


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        json.dumps({"frontier": "1" * 5_000_000}).encode(),
        b"9" * 1_000_000,
        b"\xff\xfe" * 10_000,
    ],
    ids=["deep-array", "deep-object", "huge-string", "huge-number", "not-utf8"],
)
async def test_node_client_survives_huge_replies(body: bytes) -> None:
    await call_node(body, 200)


DEEP_ARRAY = b"[" * 100_000 + b"]" * 100_000
LONG_LIST = json.dumps({"users": [{}] * 200_000}).encode()


@pytest.mark.parametrize(
    ("call", "body"),
    [
        pytest.param(call_yunite, DEEP_ARRAY, id="yunite-deep"),
        pytest.param(call_stats, DEEP_ARRAY, id="stats-deep"),
        pytest.param(call_discord, DEEP_ARRAY, id="discord-deep"),
        pytest.param(call_yunite, LONG_LIST, id="yunite-long"),
        pytest.param(call_stats, LONG_LIST, id="stats-long"),
        pytest.param(call_discord, LONG_LIST, id="discord-long"),
    ],
)
async def test_integration_clients_survive_huge_replies(call: Any, body: bytes) -> None:
    if call is call_stats:
        await call_stats(body, 200, "1")
    else:
        await call(body, 200)


# Configuration.

CONFIG_KEYS = [
    "P2S_PAYOUT__PAYOUT_AMOUNT_BAN_PER_KILL",
    "P2S_PAYOUT__SCHEDULER_MINUTES",
    "P2S_PAYOUT__DAILY_PAYOUT_CAP",
    "P2S_PAYOUT__SETTLEMENT_ORDER",
    "P2S_PAYOUT__BATCH_SIZE",
    "P2S_INTEGRATIONS__CHAIN_ENV",
    "P2S_INTEGRATIONS__NODE_RPC",
    "P2S_INTEGRATIONS__MIN_OPERATOR_BALANCE_BAN",
    "P2S_INTEGRATIONS__DRY_RUN",
    "P2S_INTEGRATIONS__DISCORD_GUILD_ID",
    "P2S_INTEGRATIONS__OAUTH_SCOPES",
    "P2S_INTEGRATIONS__DISCORD__ADMIN_ROLE_IDS",
    "P2S_INTEGRATIONS__RATE_LIMITS__FORTNITE_PER_MIN",
    "P2S_PRODUCT__APP_NAME",
    "P2S_PRODUCT__DEFAULT_LOCALE",
    "P2S_PRODUCT__FEATURE_FLAGS__DRY_RUN_BANNER",
    "P2S_UNKNOWN__KEY",
    "YUNITE_API_KEY",
    "DISCORD_CLIENT_SECRET",
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(CONFIG_KEYS), HOSTILE_TEXT | st.text(max_size=30)))
def test_configuration_raises_config_errors(environ: dict[str, str]) -> None:
    cleaned = {key: value.replace("\x00", "") for key, value in environ.items()}

    outcome = outcome_of(lambda: load_settings(CONFIG_DIR, cleaned), ConfigError)

    assert outcome.message != ""
    for name in ("YUNITE_API_KEY", "DISCORD_CLIENT_SECRET"):
        value = cleaned.get(name, "")
        if outcome.message is not None and len(value) >= 8:
            assert value not in outcome.message


@pytest.mark.parametrize(
    "zone",
    [
        "Europe/Berlin",
        "Mars/Olympus",
        "../../etc/passwd",
        "UTC/",
        "America",
        "A" * 4000,
    ],
    ids=["known", "unknown", "path", "trailing-slash", "directory", "too-long"],
)
def test_time_zone_raises_config_error(zone: str) -> None:
    outcome = outcome_of(
        lambda: load_settings(CONFIG_DIR, {"P2S_PAYOUT__RESET_TZ": zone}), ConfigError
    )

    if outcome.raised:
        assert "reset_tz" in (outcome.message or "")
    else:
        assert isinstance(outcome.value, Settings)
        assert outcome.value.payout.reset_tz == zone


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["payout.yaml", "integrations.yaml", "product.yaml"]), st.text(max_size=400))
def test_configuration_files_raise_config_errors(name: str, text: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        config_dir = Path(directory)
        for source in CONFIG_DIR.glob("*.yaml"):
            shutil.copyfile(source, config_dir / source.name)
        (config_dir / name).write_text(text, encoding="utf-8")
        outcome = outcome_of(lambda: load_settings(config_dir, {}), ConfigError)
    assert outcome.message != ""


# Cookies.

SIGNER = CookieSigner(SecretStr("session-secret-for-reliability-0123456789"))


@PARSER_EXAMPLES
@given(st.one_of(st.none(), st.text(max_size=300), HOSTILE_TEXT))
def test_cookie_verification_never_raises(value: str | None) -> None:
    assert SIGNER.verify("oauth_browser", value) is None or value is not None
    read_session(SIGNER, value)


@PARSER_EXAMPLES
@given(st.integers(0, 200), st.characters(codec="ascii"))
def test_tampered_session_cookie_refused(position: int, replacement: str) -> None:
    cookie = issue_session(SIGNER, 400_000_000_000_000_100, timedelta(minutes=5))
    genuine = read_session(SIGNER, cookie)
    index = position % len(cookie)
    tampered = cookie[:index] + replacement + cookie[index + 1 :]

    session = read_session(SIGNER, tampered)

    # The last character of unpadded base64 carries unused bits, so a few changes there
    # decode to the same bytes and the same session. No change yields another session.
    assert session is None or session == genuine
