"""The CLI commands that start processes: `run`, `sandbox` and `sync-commands`.

Bootstrap happens here, outside the Bot class: load and check the configuration, configure
logging with every secret registered for redaction, start tracing when an OTLP endpoint is
set, create the metrics, then start.

Each handler imports discord.py, the bot runtime or the sandbox itself, not this module,
because they are slow to import and `bot.cli` imports this module for every command.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, SecretStr
from sqlalchemy.engine import make_url

from core.config import ConfigError, Settings, load_settings
from core.errors import Pay2SlayError
from core.observability import LogFormat, configure_logging
from core.observability.metrics import installed_version
from core.observability.tracing import Tracing, configure_tracing

if TYPE_CHECKING:
    Subcommands = argparse._SubParsersAction[argparse.ArgumentParser]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG_ERROR = 2

DEFAULT_SANDBOX_PLAYERS = 36
DEFAULT_SANDBOX_INTERVAL_SECONDS = 5.0
# Bounds of the sandbox options: registration time grows with the players, and an interval
# must be a finite number of seconds the scheduler and the stats budget can use.
MAX_SANDBOX_PLAYERS = 5000
MIN_SANDBOX_INTERVAL_SECONDS = 0.1
MAX_SANDBOX_INTERVAL_SECONDS = 3600.0

# The override of observability.log_format, which the sandbox honours as `pay2slay run` does.
LOG_FORMAT_VARIABLE = "P2S_INTEGRATIONS__OBSERVABILITY__LOG_FORMAT"
LOG_FORMATS: dict[str, LogFormat] = {"auto": "auto", "json": "json", "console": "console"}


def add_process_commands(commands: Subcommands) -> None:
    """Add `run`, `sandbox` and `sync-commands`."""
    run = commands.add_parser(
        "run",
        help="start the Discord bot with the poller, settlement and the side web server",
        description=(
            "Load and check the configuration, then connect to Discord and run the faucet "
            "until SIGINT or SIGTERM. Exits 2 when the configuration has problems."
        ),
    )
    _add_config_dir(run)
    run.set_defaults(handler=run_bot)

    sandbox = commands.add_parser(
        "sandbox",
        help="run the whole faucet against local imitations, with no credentials",
        description=(
            "Start local imitations of Yunite, the stats API and a Banano node on loopback "
            "ports, and run the faucet against them in live mode with a temporary database. "
            "Prints each settlement run's payouts; stops on Ctrl-C or after --runs."
        ),
    )
    sandbox.add_argument(
        "--runs", type=_positive_int, default=None, help="stop after this many settlement runs"
    )
    sandbox.add_argument(
        "--players",
        type=_player_count,
        default=DEFAULT_SANDBOX_PLAYERS,
        help=f"number of invented players, 1 to {MAX_SANDBOX_PLAYERS} "
        f"(default: {DEFAULT_SANDBOX_PLAYERS})",
    )
    sandbox.add_argument(
        "--interval",
        type=_interval_seconds,
        default=DEFAULT_SANDBOX_INTERVAL_SECONDS,
        metavar="SECONDS",
        help=f"seconds between settlement runs, {MIN_SANDBOX_INTERVAL_SECONDS:g} to "
        f"{MAX_SANDBOX_INTERVAL_SECONDS:g} (default: {DEFAULT_SANDBOX_INTERVAL_SECONDS:g})",
    )
    sandbox.add_argument(
        "--seed", type=int, default=None, help="random seed for the invented players and kills"
    )
    sandbox.add_argument(
        "--log-level",
        default="WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="lowest level of log lines written to stderr (default: WARNING)",
    )
    sandbox.add_argument(
        "--log-format",
        default=None,
        choices=list(LOG_FORMATS),
        help="format of the log lines on stderr; json writes one JSON object per line "
        f"(default: ${LOG_FORMAT_VARIABLE}, else console)",
    )
    _add_config_dir(sandbox)
    sandbox.set_defaults(handler=run_sandbox_command)

    sync = commands.add_parser(
        "sync-commands",
        help="register the slash commands with Discord",
        description=(
            "Log in with the bot token, upload the slash commands with their translations, "
            "and log out. With --guild the commands are registered in that guild only and "
            "appear at once; without it they are global."
        ),
    )
    sync.add_argument(
        "--guild", type=_positive_int, default=None, metavar="ID", help="guild ID to sync to"
    )
    _add_config_dir(sync)
    sync.set_defaults(handler=sync_commands)


def _add_config_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config-dir",
        type=Path,
        default=None,
        help="directory with payout.yaml, integrations.yaml and product.yaml "
        "(default: $P2S_CONFIG_DIR, else ./configs)",
    )


def _whole_number(text: str, low: int, high: int | None) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < low or (high is not None and value > high):
        limit = f"at least {low}" if high is None else f"from {low} to {high}"
        raise argparse.ArgumentTypeError(f"expected a whole number {limit}, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    return _whole_number(text, 1, None)


def _player_count(text: str) -> int:
    return _whole_number(text, 1, MAX_SANDBOX_PLAYERS)


def _interval_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    # The comparison is False for NaN, so NaN is refused too.
    if not MIN_SANDBOX_INTERVAL_SECONDS <= value <= MAX_SANDBOX_INTERVAL_SECONDS:
        raise argparse.ArgumentTypeError(
            f"expected seconds from {MIN_SANDBOX_INTERVAL_SECONDS:g} to "
            f"{MAX_SANDBOX_INTERVAL_SECONDS:g}, got {text!r}"
        )
    return value


def secret_values(settings: Settings) -> list[str]:
    """Return every secret in the configuration, for the log redactor."""
    values = [secret.get_secret_value() for secret in _secrets_in(settings)]
    password = make_url(settings.integrations.database.url).password
    if password:
        values.append(str(password))
    return [value for value in values if value]


def _secrets_in(model: BaseModel) -> Iterator[SecretStr]:
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, SecretStr):
            yield value
        elif isinstance(value, BaseModel):
            yield from _secrets_in(value)


def _load(args: argparse.Namespace, *, for_run: bool) -> Settings | None:
    try:
        settings = load_settings(args.config_dir)
        if for_run:
            settings.check_for_run()
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"configuration check failed: {len(exc.problems)} problem(s)", file=sys.stderr)
        return None
    return settings


def _configure_logging(settings: Settings) -> None:
    observability = settings.integrations.observability
    configure_logging(
        log_format=observability.log_format,
        level=observability.log_level,
        secrets=secret_values(settings),
    )


def _configure_tracing(settings: Settings) -> Tracing:
    # Without an endpoint this returns at once, and no OpenTelemetry package is imported.
    return configure_tracing(
        settings.integrations.observability.otlp_endpoint,
        service_version=installed_version(),
        secrets=secret_values(settings),
    )


def run_bot(args: argparse.Namespace) -> int:
    """Run `pay2slay run`."""
    settings = _load(args, for_run=True)
    if settings is None:
        return EXIT_CONFIG_ERROR

    import discord

    from bot.launch import run_until_closed

    _configure_logging(settings)
    tracing = _configure_tracing(settings)
    try:
        asyncio.run(run_until_closed(settings))
    except discord.LoginFailure:
        print("pay2slay run failed: Discord rejected the bot token.", file=sys.stderr)
        return EXIT_FAILED
    except Pay2SlayError as error:
        print(f"pay2slay run failed: {error.safe_message}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        # Exports the spans still queued, waiting up to the exporter's time-out.
        tracing.shutdown()
    return EXIT_OK


def sandbox_log_format(flag: str | None, environ: Mapping[str, str]) -> LogFormat | None:
    """Return the sandbox's log format: the flag, else the variable, else console.

    The sandbox reads no other configuration from the environment. Returns None when the
    variable contains something other than auto, json or console.
    """
    if flag is not None:
        return LOG_FORMATS.get(flag)
    for name, value in environ.items():
        # The configuration loader matches override names without regard to case.
        if name.upper() == LOG_FORMAT_VARIABLE:
            return LOG_FORMATS.get(value.strip().lower())
    return "console"


def run_sandbox_command(args: argparse.Namespace) -> int:
    """Run `pay2slay sandbox`."""
    log_format = sandbox_log_format(args.log_format, os.environ)
    if log_format is None:
        print(
            f"pay2slay sandbox failed: {LOG_FORMAT_VARIABLE} is invalid; expected "
            f"{', '.join(LOG_FORMATS)}",
            file=sys.stderr,
        )
        return EXIT_CONFIG_ERROR
    redactor = configure_logging(log_format=log_format, level=args.log_level, secrets=())

    from bot.sandbox import SandboxOptions, run_sandbox

    options = SandboxOptions(
        runs=args.runs,
        players=args.players,
        interval_seconds=args.interval,
        config_dir=args.config_dir or Path("configs"),
        seed=args.seed,
    )
    try:
        return asyncio.run(run_sandbox(options, redactor=redactor))
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print("pay2slay sandbox failed: the configuration has problems", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    except Pay2SlayError as error:
        print(f"pay2slay sandbox failed: {error.safe_message}", file=sys.stderr)
        return EXIT_FAILED


def sync_commands(args: argparse.Namespace) -> int:
    """Run `pay2slay sync-commands [--guild ID]`."""
    settings = _load(args, for_run=False)
    if settings is None:
        return EXIT_CONFIG_ERROR
    if settings.secrets.discord_bot_token is None:
        print(
            "sync-commands failed: set the bot token in P2S_DISCORD_BOT_TOKEN "
            "(or P2S_DISCORD_BOT_TOKEN_FILE).",
            file=sys.stderr,
        )
        return EXIT_CONFIG_ERROR

    import discord

    from bot.launch import log_in_and_sync

    _configure_logging(settings)
    try:
        count = asyncio.run(log_in_and_sync(settings, args.guild))
    except discord.LoginFailure:
        print("sync-commands failed: Discord rejected the bot token.", file=sys.stderr)
        return EXIT_FAILED
    except discord.HTTPException as error:
        print(f"sync-commands failed: Discord returned HTTP {error.status}.", file=sys.stderr)
        return EXIT_FAILED
    except Pay2SlayError as error:
        print(f"sync-commands failed: {error.safe_message}", file=sys.stderr)
        return EXIT_FAILED
    where = f"guild {args.guild}" if args.guild else "all guilds (global)"
    print(f"synced {count} commands to {where}")
    return EXIT_OK
