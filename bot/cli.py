"""The `pay2slay` command line: one subcommand per operator task."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from alembic.util import CommandError as AlembicCommandError
from sqlalchemy.exc import SQLAlchemyError

from bot.cli_operator import add_operator_commands
from bot.cli_run import add_process_commands
from bot.cli_settlement import add_settlement_commands
from core.clock import utc_now
from core.config import ConfigError, Settings, load_settings, render_effective
from core.config.urls import MASK, mask_url_secrets, url_secret_values
from core.db import Database, DatabaseUrlError
from core.db.backup import BackupError, backup_sqlite, restore_sqlite
from core.db.migrate import (
    current_revision,
    head_revision,
    known_revisions,
    unknown_revision_message,
    upgrade_to_head,
)
from core.db.migrate import downgrade as downgrade_migrations
from core.db.retention import prune_expired
from core.db.session import normalize_url, sqlite_file_path
from core.errors import Pay2SlayError
from core.observability import configure_logging

if TYPE_CHECKING:
    Subcommands = argparse._SubParsersAction[argparse.ArgumentParser]

Handler = Callable[[argparse.Namespace], int]

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_CONFIG_ERROR = 2
EXIT_DATABASE_ERROR = 1


def add_config_commands(commands: Subcommands) -> None:
    """Add `config check`."""
    config = commands.add_parser("config", help="inspect the configuration")
    config_commands = config.add_subparsers(metavar="COMMAND", required=True)

    check = config_commands.add_parser(
        "check",
        help="validate the configuration and print it with secrets masked",
        description=(
            "Load the configuration as the bot would, print the effective values with "
            "secrets masked, and exit 0; or print each problem on stderr and exit 2."
        ),
    )
    check.add_argument(
        "--config-dir",
        type=Path,
        default=None,
        help="directory with payout.yaml, integrations.yaml and product.yaml "
        "(default: $P2S_CONFIG_DIR, else ./configs)",
    )
    check.add_argument(
        "--for-run",
        action="store_true",
        help="also require what `pay2slay run` needs: bot token, guild, API keys and URLs",
    )
    check.set_defaults(handler=check_config)


def add_db_commands(commands: Subcommands) -> None:
    """Add `db upgrade`, `db downgrade`, `db current`, and the backup commands."""
    db = commands.add_parser("db", help="apply and inspect database migrations")
    db_commands = db.add_subparsers(metavar="COMMAND", required=True)

    upgrade = db_commands.add_parser(
        "upgrade",
        help="apply every migration the database does not have yet",
        description="Create or update the database schema to the newest migration.",
    )
    _add_database_arguments(upgrade)
    upgrade.set_defaults(handler=upgrade_database)

    downgrade = db_commands.add_parser(
        "downgrade",
        help="revert migrations down to a revision (drops tables and their data)",
        description=(
            "Revert migrations down to REVISION; `base` removes every table. Reverting can "
            "drop tables and the rows in them, so --yes is required."
        ),
    )
    downgrade.add_argument("revision", help="revision id to go down to, or `base`")
    downgrade.add_argument(
        "--yes", action="store_true", help="confirm that data in dropped tables may be lost"
    )
    _add_database_arguments(downgrade)
    downgrade.set_defaults(handler=downgrade_database)

    current = db_commands.add_parser(
        "current",
        help="print the database's migration revision and the newest one",
        description="Print the revision the database is at, and whether it is the newest.",
    )
    _add_database_arguments(current)
    current.set_defaults(handler=show_database_revision)

    add_backup_commands(db_commands)


def add_backup_commands(db_commands: Subcommands) -> None:
    """Add `db backup`, `db restore` and `db prune` to the `db` group."""
    backup = db_commands.add_parser(
        "backup",
        help="copy the SQLite database to PATH while the bot runs, and check the copy",
        description=(
            "Copy the SQLite database with SQLite's online backup API, which is safe while "
            "the bot runs, then check the copy's integrity and print its size, SHA-256 and "
            "migration revision. For PostgreSQL use pg_dump (see docs/operations.md)."
        ),
    )
    backup.add_argument("path", type=Path, help="file to write the backup to")
    backup.add_argument("--overwrite", action="store_true", help="replace PATH if it exists")
    _add_database_arguments(backup)
    backup.set_defaults(handler=backup_database)

    restore = db_commands.add_parser(
        "restore",
        help="replace the SQLite database with a backup (stop the bot first)",
        description=(
            "Check the backup, refuse while a settlement lease is held, keep a copy of the "
            "current database next to it, and copy the backup into place. Stop the bot "
            "first: a running bot between settlements holds no lease. --yes is required."
        ),
    )
    restore.add_argument("path", type=Path, help="backup file written by `pay2slay db backup`")
    restore.add_argument(
        "--yes", action="store_true", help="confirm that the current database is replaced"
    )
    restore.add_argument(
        "--no-keep-previous",
        dest="keep_previous",
        action="store_false",
        help="do not keep a copy of the current database before replacing it",
    )
    _add_database_arguments(restore)
    restore.set_defaults(handler=restore_database)

    prune = db_commands.add_parser(
        "prune",
        help="delete rows past their retention period (see docs/privacy.md)",
        description=(
            "Delete verification records older than 90 days and sign-in states that expired "
            "more than a day ago. Ledger and audit rows are never deleted."
        ),
    )
    prune.add_argument(
        "--dry-run", action="store_true", help="count the rows that would be deleted, delete none"
    )
    _add_database_arguments(prune)
    prune.set_defaults(handler=prune_database)


def _add_database_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config-dir",
        type=Path,
        default=None,
        help="directory with the YAML configuration that names the database "
        "(default: $P2S_CONFIG_DIR, else ./configs)",
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="database URL to use instead of the configured one; a URL with a password "
        "is visible to other local users here, so prefer P2S_INTEGRATIONS__DATABASE__URL",
    )
    parser.add_argument(
        "--schema",
        default=None,
        help="PostgreSQL schema that contains Pay2Slay's tables, set as the search_path "
        "(default: the server's search_path, normally public)",
    )


# Each function adds one group of subcommands; add new groups here.
COMMAND_GROUPS: tuple[Callable[[Subcommands], None], ...] = (
    add_config_commands,
    add_db_commands,
    add_process_commands,
    add_settlement_commands,
    add_operator_commands,
)


def check_config(args: argparse.Namespace) -> int:
    """Run `pay2slay config check`."""
    _configure_default_logging()
    try:
        settings = load_settings(args.config_dir)
        if args.for_run:
            settings.check_for_run()
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        count = len(exc.problems)
        print(f"configuration check failed: {count} problem(s)", file=sys.stderr)
        return EXIT_CONFIG_ERROR

    _configure_logging(settings, ())
    print(render_effective(settings), end="")
    return EXIT_OK


def _configure_default_logging() -> None:
    # Until the configuration is loaded: warnings and errors only, to stderr, so that
    # nothing is mixed into a command's output on stdout.
    configure_logging(log_format="auto", level="WARNING", secrets=(), stream=sys.stderr)


def _configure_logging(settings: Settings, extra_secrets: Sequence[str]) -> None:
    observability = settings.integrations.observability
    configure_logging(
        log_format=observability.log_format,
        level=observability.log_level,
        secrets=[*settings.secret_values(), *extra_secrets],
        stream=sys.stderr,
    )


def _load_for_database_command(args: argparse.Namespace, action: str) -> tuple[str, int]:
    """Load the configuration, configure logging from it, and return the database URL.

    Returns the URL and EXIT_OK, or "" and an exit code after printing the problems. The
    configuration is loaded even with --database-url, because it sets the log level and
    format.
    """
    _configure_default_logging()
    try:
        settings = load_settings(args.config_dir)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"db {action} failed: the configuration has problems", file=sys.stderr)
        return "", EXIT_CONFIG_ERROR

    url: str = args.database_url or settings.integrations.database.url
    _configure_logging(settings, url_secret_values(url))
    return url, EXIT_OK


def upgrade_database(args: argparse.Namespace) -> int:
    """Run `pay2slay db upgrade`."""
    return _run_database_command(args, "upgrade", _upgrade_database, create=True)


def downgrade_database(args: argparse.Namespace) -> int:
    """Run `pay2slay db downgrade REVISION --yes`."""
    if not args.yes:
        print(
            "db downgrade rejected: reverting migrations can drop tables and their data; "
            "run it again with --yes to confirm.",
            file=sys.stderr,
        )
        return EXIT_USAGE

    async def downgrade_to(db: Database) -> str:
        return await _downgrade_database(db, args.revision)

    return _run_database_command(args, "downgrade", downgrade_to)


def show_database_revision(args: argparse.Namespace) -> int:
    """Run `pay2slay db current`."""
    return _run_database_command(args, "current", _describe_revision)


def _run_database_command(
    args: argparse.Namespace,
    action: str,
    command: Callable[[Database], Awaitable[str]],
    *,
    create: bool = False,
) -> int:
    """Run `command` on the database and print its message.

    Only `create` commands may open a SQLite file that does not exist yet, because opening one
    creates it and its directory.
    """
    url, code = _load_for_database_command(args, action)
    if code != EXIT_OK:
        return code
    try:
        missing = None if create else _missing_sqlite_file(url)
    except DatabaseUrlError as exc:
        print(f"db {action} failed: {exc.safe_message}", file=sys.stderr)
        return EXIT_DATABASE_ERROR
    if missing is not None:
        print(f"db {action} failed: no database at {missing}", file=sys.stderr)
        return EXIT_DATABASE_ERROR

    async def run() -> str:
        db = Database.from_url(url, search_path=args.schema)
        try:
            return await command(db)
        finally:
            await db.dispose()

    try:
        message = asyncio.run(run())
    except Pay2SlayError as exc:
        print(f"db {action} failed: {exc.safe_message}", file=sys.stderr)
        return EXIT_DATABASE_ERROR
    except (SQLAlchemyError, AlembicCommandError, OSError) as exc:
        print(f"db {action} failed: {_error_reason(exc, url)}", file=sys.stderr)
        return EXIT_DATABASE_ERROR

    print(message)
    return EXIT_OK


def _missing_sqlite_file(url: str) -> Path | None:
    """Return the absolute path of the SQLite file `url` names if it does not exist."""
    path = sqlite_file_path(normalize_url(url))
    if path is None or path.exists():
        return None
    return path.absolute()


def _error_reason(error: Exception, url: str) -> str:
    # Only the first line is printed because it names the driver error. Later lines of a
    # SQLAlchemy error contain the SQL statement and its parameters. A driver may quote the
    # URL or its password, so both are masked.
    text = str(error)
    reason = text.splitlines()[0] if text else type(error).__name__
    for secret in url_secret_values(url):
        reason = reason.replace(secret, MASK)
    return mask_url_secrets(reason)


async def _upgrade_database(db: Database) -> str:
    result = await upgrade_to_head(db)
    if not result.changed:
        return f"database already at revision {result.after} (head)"
    return f"database upgraded from {result.before or 'base'} to {result.after} (head)"


async def _downgrade_database(db: Database, revision: str) -> str:
    result = await downgrade_migrations(db, revision)
    return f"database downgraded from {result.before or 'base'} to {result.after or 'base'}"


async def _describe_revision(db: Database) -> str:
    revision = await current_revision(db)
    head = head_revision()
    if revision is None:
        return f"database at base (no migrations applied); head is {head}"
    if revision == head:
        return f"database at revision {revision} (head)"
    if revision not in known_revisions():
        return unknown_revision_message(revision)
    return f"database at revision {revision}; head is {head}, run `pay2slay db upgrade`"


def backup_database(args: argparse.Namespace) -> int:
    """Run `pay2slay db backup PATH`."""
    source = _sqlite_file(args, "backup")
    if isinstance(source, int):
        return source
    try:
        report = backup_sqlite(source, args.path, overwrite=args.overwrite)
    except BackupError as exc:
        print(f"db backup failed: {exc.safe_message}", file=sys.stderr)
        return EXIT_DATABASE_ERROR
    print(f"backup written: {report.describe()}")
    return EXIT_OK


def restore_database(args: argparse.Namespace) -> int:
    """Run `pay2slay db restore PATH --yes`."""
    if not args.yes:
        print(
            "db restore rejected: it replaces the current database; stop the bot, then run "
            "it again with --yes to confirm.",
            file=sys.stderr,
        )
        return EXIT_USAGE
    target = _sqlite_file(args, "restore")
    if isinstance(target, int):
        return target
    try:
        report = restore_sqlite(args.path, target, now=utc_now(), keep_previous=args.keep_previous)
    except BackupError as exc:
        print(f"db restore failed: {exc.safe_message}", file=sys.stderr)
        return EXIT_DATABASE_ERROR
    except SQLAlchemyError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"db restore failed: {reason}", file=sys.stderr)
        return EXIT_DATABASE_ERROR

    if report.previous_copy is not None:
        print(f"previous database kept at {report.previous_copy}")
    print(f"restored {target} from {report.backup.describe()}")
    print(
        "payouts are paused: payouts sent after the backup was taken are on chain but not in "
        "the restored ledger. Compare the operator account's history with the payout history "
        "(docs/operations.md, Restore), then resume with /payouts-resume or "
        "`pay2slay payouts resume`."
    )
    print("start the bot; it applies any newer migrations when migrate_on_start is true")
    return EXIT_OK


def prune_database(args: argparse.Namespace) -> int:
    """Run `pay2slay db prune`."""

    async def prune(db: Database) -> str:
        report = await prune_expired(db, now=utc_now(), dry_run=args.dry_run)
        return report.describe()

    return _run_database_command(args, "prune", prune)


def _sqlite_file(args: argparse.Namespace, action: str) -> Path | int:
    """Return the configured SQLite database file, or print why not and return an exit code."""
    url, code = _load_for_database_command(args, action)
    if code != EXIT_OK:
        return code
    if args.schema is not None:
        print(f"db {action} failed: --schema applies to PostgreSQL only", file=sys.stderr)
        return EXIT_USAGE
    try:
        path = sqlite_file_path(normalize_url(url))
    except DatabaseUrlError as exc:
        print(f"db {action} failed: {exc.safe_message}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    if path is None:
        print(
            f"db {action} works on a SQLite database file; for PostgreSQL use pg_dump and "
            "pg_restore as docs/operations.md shows.",
            file=sys.stderr,
        )
        return EXIT_USAGE
    return path


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every subcommand group."""
    parser = argparse.ArgumentParser(
        prog="pay2slay", description="Discord bot that pays Banano for Fortnite kills."
    )
    commands = parser.add_subparsers(metavar="COMMAND", required=True)
    for add_group in COMMAND_GROUPS:
        add_group(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command in `argv` (default: the process arguments) and return its exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        # argparse exits after --help (0) and after a usage error (2).
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    handler: Handler = args.handler
    return handler(args)
