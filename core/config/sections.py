"""Nested sections of integrations.yaml: Banano sending, Discord, database, web server, logs."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, Strict

from core.banano.address import is_valid_address
from core.config.base import ConfigModel
from core.config.fields import (
    DiscordIdList,
    Expected,
    Flag,
    HttpUrlOrEmpty,
    RequiredText,
    Text,
    TimeoutSeconds,
    check_http_url,
)

WorkSource = Literal["node", "work_server", "do_work", "local"]


def _check_wallet_id(text: str) -> str:
    if text != "" and not re.fullmatch(r"[0-9A-Fa-f]{64}", text):
        raise ValueError("not a wallet ID of 64 hexadecimal digits")
    return text


def _check_representative(text: str) -> str:
    if text != "" and not is_valid_address(text):
        raise ValueError("not a valid ban_ address")
    return text


def _check_work_sources(sources: list[WorkSource]) -> list[WorkSource]:
    if not sources:
        raise ValueError("the list is empty")
    if len(set(sources)) != len(sources):
        raise ValueError("a work source is listed twice")
    return sources


def _check_work_threshold(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError(
            'write the threshold as 16 hexadecimal digits in quotes, e.g. "fffffe0000000000"; '
            "digits alone read as a number, in YAML and in P2S_ variables alike"
        )
    if not re.fullmatch(r"[0-9A-Fa-f]{16}", value):
        raise ValueError("not 16 hexadecimal digits")
    return value.lower()


def _check_explorer_url(text: str) -> str:
    if text != "" and "{block_hash}" not in text:
        raise ValueError("the URL has no {block_hash} placeholder")
    try:
        example = text.format(block_hash="0" * 64)
    except (KeyError, IndexError, ValueError):
        raise ValueError("the URL has a placeholder other than {block_hash}") from None
    check_http_url(example)
    return text


def _check_database_url(text: str) -> str:
    if not re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", text):
        raise ValueError("not a database URL such as sqlite+aiosqlite:///data/pay2slay.db")

    # Imported here so that loading the configuration does not load SQLAlchemy's engine
    # modules until a URL is checked.
    from core.db.session import DatabaseUrlError, normalize_url

    try:
        normalize_url(text)
    except DatabaseUrlError as error:
        # The message names the problem, never the URL, which may contain a password.
        message = error.safe_message.rstrip(".")
        raise ValueError(message[:1].lower() + message[1:]) from None
    return text


def _check_header_name(text: str) -> str:
    if text != "" and not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", text):
        raise ValueError("not a valid HTTP header name")
    return text


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


class BananoSettings(ConfigModel):
    """Banano sending: the signer, the proof-of-work sources and node RPC limits."""

    signer: Annotated[Literal["local", "node_wallet"], Expected("local or node_wallet")] = Field(
        description=(
            "local: sign blocks with the operator seed and publish them with process. "
            "node_wallet: the node-wallet send with an id, on the operator's node or Pippin."
        )
    )
    node_wallet_id: Annotated[
        str,
        AfterValidator(_check_wallet_id),
        Expected('a wallet ID of 64 hexadecimal digits, or "" when the signer is local'),
    ] = Field(
        description="Node wallet that contains the operator account, for the node_wallet signer."
    )
    representative: Annotated[
        str,
        AfterValidator(_check_representative),
        Expected('a ban_ address, or "" to keep the operator account\'s representative'),
    ] = Field(description="Representative written into blocks the faucet signs.")
    work_sources: Annotated[
        list[WorkSource],
        AfterValidator(_check_work_sources),
        Expected("a non-empty list of node, work_server, do_work and local, without repeats"),
    ] = Field(
        description=(
            "Proof-of-work sources tried in order: node (work_generate on node_rpc), "
            "work_server (work_server_url), do_work (the public node computes it) and local "
            "(a CPU search in another process)."
        )
    )
    work_server_url: HttpUrlOrEmpty = Field(description="Work server for the work_server source.")
    work_threshold: Annotated[
        str,
        BeforeValidator(_check_work_threshold),
        Expected("16 hexadecimal digits in quotes"),
    ] = Field(description="Proof-of-work difficulty threshold for send blocks.")
    rpc_timeout_seconds: TimeoutSeconds = Field(
        description="Time limit for one node RPC call, in seconds."
    )
    explorer_block_url: Annotated[
        str,
        AfterValidator(_check_explorer_url),
        Expected('a URL that contains {block_hash}, or "" for no links'),
    ] = Field(description="Link shown to players for a payout's block; {block_hash} is replaced.")

    @property
    def work_threshold_value(self) -> int:
        """Proof-of-work threshold as an integer."""
        return int(self.work_threshold, 16)


class DiscordSettings(ConfigModel):
    """Discord admin roles and users, and payout messages."""

    admin_role_ids: DiscordIdList = Field(
        description="Guild roles whose members may use the admin commands."
    )
    admin_user_ids: DiscordIdList = Field(
        description="Users who may use the admin commands whatever their roles."
    )
    payout_dms: Flag = Field(description="Send players a direct message for each payout.")


class DatabaseSettings(ConfigModel):
    """The database the ledger lives in."""

    url: Annotated[
        str,
        AfterValidator(_check_database_url),
        Expected("an SQLAlchemy async URL, e.g. sqlite+aiosqlite:///data/pay2slay.db"),
    ] = Field(
        description=(
            "SQLAlchemy URL of the database. A URL with a password must come from the "
            "environment, for example url: ${DATABASE_URL}."
        )
    )
    migrate_on_start: Flag = Field(description="Apply database migrations when the bot starts.")


class ServerSettings(ConfigModel):
    """The side web server for OAuth, health checks and metrics."""

    host: RequiredText = Field(description="Address the web server listens on.")
    port: Annotated[
        int, Strict(), Field(ge=0, le=65535), Expected("a TCP port from 0 to 65535")
    ] = Field(description="Port the web server listens on; 0 picks a free port.")
    trusted_region_header: Annotated[
        str,
        AfterValidator(_check_header_name),
        Expected('an HTTP header name, or "" to trust none'),
    ] = Field(
        description=(
            "Request header, set by a trusted reverse proxy, that carries the client's "
            "region; empty means no such header is trusted."
        )
    )
    geoip_database: Text = Field(
        description='Path of a GeoIP database file for the client\'s region; "" for none.'
    )


class ObservabilitySettings(ConfigModel):
    """Log format and level, and where traces go."""

    log_format: Annotated[Literal["auto", "json", "console"], Expected("auto, json or console")] = (
        Field(description="Log line format; auto means JSON when stdout is not a terminal.")
    )
    log_level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
        BeforeValidator(_upper),
        Expected("DEBUG, INFO, WARNING, ERROR or CRITICAL"),
    ] = Field(description="Lowest level that is logged.")
    otlp_endpoint: HttpUrlOrEmpty = Field(
        description='OpenTelemetry collector URL for traces; "" turns tracing off.'
    )
