"""Named leases so that one settlement runs at a time across every process on the database.

Usage::

    lock = SettlementLock(db, clock=utc_now)
    async with lock.hold("settlement", holder, timedelta(minutes=10)) as acquired:
        if not acquired:
            return  # another process is settling
        ...  # the lease is renewed every ttl / 3 while the block runs
        if not await lock.is_held("settlement", holder):
            ...  # the lease was lost: stop before the next send

API (every method is a coroutine unless marked):

- `SettlementLock(db: Database, *, clock: Clock = utc_now)`
- `hold(name, holder, ttl, *, renew_every=None)`: async context manager yielding `bool`
  (acquired). While the block runs, a task renews the lease every `renew_every`
  (default `ttl / 3`) and logs `lease_lost` if renewal fails. The lease is released on
  exit, also when the block raises.
- `try_acquire(name, holder, ttl) -> bool`: take the lease if it is free, expired or
  already held by `holder` (which then extends it).
- `renew(name, holder, ttl) -> bool`: extend the lease to now + `ttl`. Returns False when
  `holder` no longer holds it.
- `release(name, holder) -> None`: give the lease up. Releasing a lease held by someone
  else does nothing.
- `is_held(name, holder) -> bool`: whether `holder` still holds the lease.
- `new_holder_id() -> str` (plain function): an id unique to this process and call.
- `advisory_key(name, schema) -> int` (plain function): the PostgreSQL advisory lock key for
  `name` in the schema that contains the tables.

`name` is at most 64 characters, `holder` at most 128 without line breaks, and `ttl` must be
positive. Two processes must never use the same holder id; `new_holder_id()` makes a new one
for each call.

SQLite: the `leases` row is the lock. One atomic upsert inserts it when absent and takes it
over only when it has expired or already belongs to the same holder. For a database file, a
process takes the lease only while it holds the lock of a file beside it
(`core.db.lease_file`), and keeps that lock as long as the lease. So a lease whose holder the
file names can be taken at once by the next process that gets the file lock. Where the file
cannot be used, a crashed holder's lease becomes free once its `expires_at` has passed.

PostgreSQL: a session-level advisory lock (`pg_try_advisory_lock`) on a dedicated connection
is the lock, held until `release` or until that connection closes, so a crashed process
frees it at once and a live holder keeps it even past `ttl`. The `leases` row is still
written and renewed so operators can see who holds the lock and until when.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import structlog
from sqlalchemy import case, delete, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from core.clock import Clock, utc_now
from core.db.lease_file import LeaseFile, lease_file_path
from core.db.models import Lease
from core.db.session import Database, sqlite_file_path

log = structlog.get_logger(__name__)

# The lease of settlement runs, retries and going live.
SETTLEMENT_LOCK_NAME = "settlement"
MAX_NAME_LENGTH = 64
MAX_HOLDER_LENGTH = 128


def advisory_key(name: str, schema: str) -> int:
    """Return a stable signed 64-bit PostgreSQL advisory lock key for a lease name.

    Advisory locks are shared by the whole database, so the schema is part of the key, and
    deployments or test runs in different schemas of one database do not block each other.
    """
    digest = hashlib.sha256(f"pay2slay:{schema}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def new_holder_id() -> str:
    """Return a holder id made of the host name, the process id and a random suffix."""
    host = socket.gethostname()[:64]
    return f"{host}:{os.getpid()}:{secrets.token_hex(6)}"


@dataclass(slots=True)
class _AdvisoryLock:
    holder: str
    key: int
    connection: AsyncConnection
    # asyncpg runs one operation at a time per connection and raises on a second one, so the
    # renewal task, `is_held` and `release` take turns on the connection.
    guard: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass(slots=True)
class _HeldLeaseFile:
    holder: str
    lease_file: LeaseFile


class SettlementLock:
    """Named, expiring leases backed by the `leases` table and PostgreSQL advisory locks."""

    def __init__(self, db: Database, *, clock: Clock = utc_now) -> None:
        self._db = db
        self._clock = clock
        self._postgres = db.dialect_name == "postgresql"
        # PostgreSQL only: the connection holding each advisory lock this object took.
        self._advisory: dict[str, _AdvisoryLock] = {}
        # SQLite files only: the lease files this object has locked, by lease name.
        self._database_path = None if self._postgres else sqlite_file_path(db.engine.url)
        self._lease_files: dict[str, _HeldLeaseFile] = {}

    @asynccontextmanager
    async def hold(
        self,
        name: str,
        holder: str,
        ttl: timedelta,
        *,
        renew_every: timedelta | None = None,
    ) -> AsyncIterator[bool]:
        """Try to take the lease, keep it renewed while the block runs, then release it."""
        interval = renew_every if renew_every is not None else ttl / 3
        if interval <= timedelta(0):
            raise ValueError("renew_every must be positive")

        acquired = await self.try_acquire(name, holder, ttl)
        if not acquired:
            yield False
            return

        stop = asyncio.Event()
        renewer = asyncio.create_task(self._keep_renewed(name, holder, ttl, interval, stop))
        try:
            yield True
        finally:
            stop.set()
            try:
                await renewer
            finally:
                await self.release(name, holder)

    async def try_acquire(self, name: str, holder: str, ttl: timedelta) -> bool:
        """Take the lease if it is free, expired or already held by `holder`."""
        _validate(name, holder, ttl)
        if self._postgres:
            acquired = await self._acquire_advisory(name, holder, ttl)
        elif self._database_path is not None:
            acquired = await self._acquire_with_lease_file(name, holder, ttl, self._database_path)
        else:
            acquired = await self._upsert_lease(name, holder, ttl, take_over_live=False)

        if acquired:
            log.debug("lease_acquired", name=name, holder=holder)
        else:
            log.debug("lease_busy", name=name, holder=holder)
        return acquired

    async def renew(self, name: str, holder: str, ttl: timedelta) -> bool:
        """Extend the lease to now + `ttl`, or return False when `holder` no longer holds it."""
        _validate(name, holder, ttl)
        if self._postgres:
            if not await self._advisory_lock_alive(name, holder):
                return False
            return await self._upsert_lease(name, holder, ttl, take_over_live=True)

        expires_at = self._clock() + ttl
        async with self._db.write() as session:
            renewed = await session.scalar(
                update(Lease)
                .where(Lease.name == name, Lease.holder == holder)
                .values(expires_at=expires_at)
                .returning(Lease.name)
            )
        return renewed is not None

    async def release(self, name: str, holder: str) -> None:
        """Release the lease. A lease held by another holder is left alone."""
        deleted = False
        try:
            async with self._db.write() as session:
                await session.execute(
                    delete(Lease).where(Lease.name == name, Lease.holder == holder)
                )
            deleted = True
        finally:
            # The row goes first, so a new holder's row is never deleted by this release.
            if self._postgres:
                await self._release_advisory(name, holder)
            else:
                # A row left behind stays named in the file, so the next process takes it.
                self._close_lease_file(name, holder, clear=deleted)
        log.debug("lease_released", name=name, holder=holder)

    async def is_held(self, name: str, holder: str) -> bool:
        """Return whether `holder` holds the lease now."""
        if self._postgres:
            return await self._advisory_lock_alive(name, holder)

        async with self._db.read() as session:
            expires_at = await session.scalar(
                select(Lease.expires_at).where(Lease.name == name, Lease.holder == holder)
            )
        return expires_at is not None and expires_at > self._clock()

    async def _keep_renewed(
        self,
        name: str,
        holder: str,
        ttl: timedelta,
        interval: timedelta,
        stop: asyncio.Event,
    ) -> None:
        while True:
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval.total_seconds())
                return
            except TimeoutError:
                pass

            try:
                renewed = await self.renew(name, holder, ttl)
            except (SQLAlchemyError, OSError) as error:
                # The lease stays valid until its expiry, so the next interval retries.
                log.warning(
                    "lease_renew_failed",
                    name=name,
                    holder=holder,
                    error=_describe(error),
                )
                continue

            if not renewed:
                log.error("lease_lost", name=name, holder=holder)
                return

    async def _upsert_lease(
        self,
        name: str,
        holder: str,
        ttl: timedelta,
        *,
        take_over_live: bool,
        dead_holder: str | None = None,
    ) -> bool:
        """Upsert the lease row for `holder` and return whether `holder` holds the lease now.

        Without `take_over_live` the row changes hands only when it has expired or belongs to
        `dead_holder`. So of two callers racing for a free or expired lease only one wins:
        the second upsert finds the first one's unexpired row and leaves it alone.
        """
        now = self._clock()
        insert = postgresql.insert if self._postgres else sqlite.insert
        statement = insert(Lease).values(
            name=name, holder=holder, acquired_at=now, expires_at=now + ttl
        )
        same_holder = Lease.holder == statement.excluded.holder
        takeover_conditions = [same_holder, Lease.expires_at <= now]
        if dead_holder is not None:
            takeover_conditions.append(Lease.holder == dead_holder)
        statement = statement.on_conflict_do_update(
            index_elements=[Lease.name],
            set_={
                "holder": statement.excluded.holder,
                "acquired_at": case(
                    (same_holder, Lease.acquired_at), else_=statement.excluded.acquired_at
                ),
                "expires_at": statement.excluded.expires_at,
            },
            where=None if take_over_live else or_(*takeover_conditions),
        )

        async with self._db.write() as session:
            await session.execute(statement)
            current = await session.scalar(select(Lease.holder).where(Lease.name == name))
        return current == holder

    async def _acquire_with_lease_file(
        self, name: str, holder: str, ttl: timedelta, database_path: Path
    ) -> bool:
        held = self._lease_files.get(name)
        if held is not None:
            if held.holder != holder:
                return False
            return await self._upsert_lease(name, holder, ttl, take_over_live=False)

        path = lease_file_path(database_path, name)
        try:
            lease_file = LeaseFile.try_lock(path)
        except OSError as error:
            log.warning("lease_file_unavailable", name=name, path=str(path), error=_describe(error))
            return await self._upsert_lease(name, holder, ttl, take_over_live=False)
        if lease_file is None:
            # A live process holds the file: the lease's holder, or one taking or checking it.
            return False

        try:
            acquired = await self._acquire_holding_file(name, holder, ttl, lease_file)
        except OSError as error:
            # Not a fall-back to the expiry: the file may name this holder by now, and a row
            # taken without the file lock would then be taken from it by the next process.
            lease_file.close()
            log.warning(
                "lease_file_write_failed", name=name, path=str(path), error=_describe(error)
            )
            return False
        except BaseException:
            lease_file.close()
            raise
        if acquired:
            self._lease_files[name] = _HeldLeaseFile(holder, lease_file)
        else:
            lease_file.close()
        return acquired

    async def _acquire_holding_file(
        self, name: str, holder: str, ttl: timedelta, lease_file: LeaseFile
    ) -> bool:
        """Take the lease while holding its file lock, and record `holder` in the file."""
        ended = lease_file.recorded_holders()
        current = await self._current_holder(name)
        dead_holder = current if current is not None and current in ended else None
        # Written before the row. If this process dies before it records the outcome, the
        # file then names both possible owners of the row, and the next process takes it.
        lease_file.record([holder] if dead_holder is None else [holder, dead_holder])
        acquired = await self._upsert_lease(
            name, holder, ttl, take_over_live=False, dead_holder=dead_holder
        )
        if not acquired:
            lease_file.record(sorted(ended))
            return False

        try:
            lease_file.record([holder])
        except OSError as error:
            # The file names this holder already, and this process keeps its lock.
            log.warning("lease_file_write_failed", name=name, error=_describe(error))
        if dead_holder is not None:
            log.warning(
                "lease_taken_from_ended_holder", name=name, holder=holder, ended=dead_holder
            )
        return True

    async def _current_holder(self, name: str) -> str | None:
        async with self._db.read() as session:
            return await session.scalar(select(Lease.holder).where(Lease.name == name))

    def _close_lease_file(self, name: str, holder: str, *, clear: bool) -> None:
        held = self._lease_files.get(name)
        if held is None or held.holder != holder:
            return
        del self._lease_files[name]
        try:
            if clear:
                held.lease_file.record([])
        except OSError as error:
            # The row is gone already, so an id left in the file names no lease.
            log.warning("lease_file_clear_failed", name=name, error=_describe(error))
        finally:
            held.lease_file.close()

    async def _acquire_advisory(self, name: str, holder: str, ttl: timedelta) -> bool:
        held = self._advisory.get(name)
        if held is not None:
            if held.holder != holder:
                return False
            return await self.renew(name, holder, ttl)

        connection = await self._db.engine.connect()
        try:
            schema = await connection.scalar(text("SELECT current_schema()"))
            key = advisory_key(name, str(schema))
            locked = await connection.scalar(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": key}
            )
            # The session-level lock outlives this transaction, and ending the transaction
            # keeps the connection from sitting idle inside one while the lease is held.
            await connection.commit()
            if not locked:
                await connection.close()
                return False

            self._advisory[name] = _AdvisoryLock(holder=holder, key=key, connection=connection)
            await self._upsert_lease(name, holder, ttl, take_over_live=True)
        except BaseException:
            self._advisory.pop(name, None)
            # Closing the session's connection discards it, so its advisory lock goes too.
            await connection.invalidate()
            await connection.close()
            raise
        return True

    async def _advisory_lock_alive(self, name: str, holder: str) -> bool:
        held = self._advisory.get(name)
        if held is None or held.holder != holder:
            return False
        async with held.guard:
            if self._advisory.get(name) is not held:
                # Released or found lost while this call waited for the connection.
                return False
            try:
                await held.connection.scalar(text("SELECT 1"))
                await held.connection.commit()
            except (SQLAlchemyError, OSError) as error:
                # The server ended the session, and with it the advisory lock.
                log.error("lease_connection_lost", name=name, holder=holder, error=_describe(error))
                self._advisory.pop(name, None)
                await held.connection.invalidate()
                await held.connection.close()
                return False
        return True

    async def _release_advisory(self, name: str, holder: str) -> None:
        held = self._advisory.get(name)
        if held is None or held.holder != holder:
            return

        del self._advisory[name]
        async with held.guard:
            try:
                unlocked = await held.connection.scalar(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": held.key}
                )
                await held.connection.commit()
            except (SQLAlchemyError, OSError) as error:
                log.warning("lease_unlock_failed", name=name, holder=holder, error=_describe(error))
                unlocked = False

            # A connection that may still hold the lock must not go back to the pool:
            # discarding it ends its session, and the server frees the lock with it.
            if not unlocked:
                await held.connection.invalidate()
            await held.connection.close()


def _describe(error: BaseException) -> str:
    # The first line of a SQLAlchemy error names the driver error. Later lines contain the SQL.
    lines = str(error).splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def _validate(name: str, holder: str, ttl: timedelta) -> None:
    if not name or len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"lease name must be 1 to {MAX_NAME_LENGTH} characters, got {name!r}")
    if not holder or len(holder) > MAX_HOLDER_LENGTH:
        raise ValueError(f"lease holder must be 1 to {MAX_HOLDER_LENGTH} characters")
    if "\n" in holder or "\r" in holder:
        raise ValueError("lease holder must not contain a line break")
    if ttl <= timedelta(0):
        raise ValueError(f"lease ttl must be positive, got {ttl}")
