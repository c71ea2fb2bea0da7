"""Regional login statistics for abuse analysis, kept without IP addresses.

A login's region is a coarse ISO 3166-1 alpha-2 country code, taken from a request header
that a trusted reverse proxy sets (`server.trusted_region_header`, such as Cloudflare's
`CF-IPCountry`), or else looked up in a local GeoIP database file (`server.geoip_database`).
Anything else is `unknown`. Only a count per day and country is stored; the client address is
used for the lookup in memory and never stored or logged. The region never affects
eligibility.

The GeoIP file is read with the `maxminddb` package, which Pay2Slay does not install. Without
it a configured file is ignored, with a warning at start-up, and regions come from the header
or are unknown.
"""

from __future__ import annotations

import importlib
import ipaddress
from collections.abc import Mapping
from datetime import date
from typing import Any

import structlog
from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import Clock, utc_now
from core.config.sections import ServerSettings
from core.db.models import RegionCount
from core.db.session import Database
from core.observability.labels import COUNTRY_CODES, UNKNOWN_COUNTRY
from core.observability.metrics import Metrics

log = structlog.get_logger(__name__)


def normalize_country(value: str | None) -> str:
    """Return an assigned ISO 3166-1 alpha-2 code in upper case, or `unknown`.

    Proxies send placeholders such as `XX` (no data) or `T1` (Tor), which become `unknown`.
    """
    code = (value or "").strip().upper()
    return code if code in COUNTRY_CODES else UNKNOWN_COUNTRY


class RegionResolver:
    """Find the coarse country of a request from a trusted header or a GeoIP file."""

    def __init__(self, trusted_header: str = "", geoip_database: str = "") -> None:
        self._trusted_header = trusted_header
        self._reader: Any = None
        if geoip_database:
            self._reader = _open_geoip_reader(geoip_database)

    @classmethod
    def from_settings(cls, server: ServerSettings) -> RegionResolver:
        """Build the resolver from the `server` section of integrations.yaml."""
        return cls(server.trusted_region_header, server.geoip_database)

    @property
    def uses_geoip(self) -> bool:
        """Whether a GeoIP database file is open for lookups."""
        return self._reader is not None

    def country_for(self, headers: Mapping[str, str], remote_address: str | None) -> str:
        """Return the request's country code, or `unknown`."""
        if self._trusted_header:
            country = normalize_country(headers.get(self._trusted_header))
            if country != UNKNOWN_COUNTRY:
                return country

        if self._reader is None or not remote_address:
            return UNKNOWN_COUNTRY
        try:
            address = ipaddress.ip_address(remote_address)
        except ValueError:
            return UNKNOWN_COUNTRY
        if not address.is_global:
            return UNKNOWN_COUNTRY
        return self._lookup(str(address))

    def close(self) -> None:
        """Close the GeoIP database file, if one is open."""
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def _lookup(self, address: str) -> str:
        try:
            record = self._reader.get(address)
        except (ValueError, OSError, RuntimeError) as error:
            log.warning("geoip_lookup_failed", error_type=type(error).__name__)
            return UNKNOWN_COUNTRY
        if not isinstance(record, dict):
            return UNKNOWN_COUNTRY
        country = record.get("country") or record.get("registered_country")
        if not isinstance(country, dict):
            return UNKNOWN_COUNTRY
        iso_code = country.get("iso_code")
        return normalize_country(iso_code if isinstance(iso_code, str) else None)


def _open_geoip_reader(path: str) -> Any:
    # NOTE: this path runs only where `maxminddb` is installed, and the test suite does not
    # install it. The calls follow the package's documented API: `open_database(path)` returns
    # a reader whose `get(ip)` returns the record as a dict, and a bad file raises
    # `InvalidDatabaseError`, a RuntimeError.
    try:
        maxminddb = importlib.import_module("maxminddb")
    except ImportError:
        log.warning(
            "geoip_reader_missing",
            reason="server.geoip_database is set but the maxminddb package is not installed",
        )
        return None
    try:
        return maxminddb.open_database(path)
    except (OSError, ValueError, RuntimeError) as error:
        log.warning("geoip_database_unreadable", path=path, error_type=type(error).__name__)
        return None


async def add_region_count(session: AsyncSession, *, day: date, country: str) -> None:
    """Add one login from `country` on `day` to the session's transaction."""
    country = normalize_country(country)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    await session.execute(
        insert(RegionCount).values(day=day, country=country, count=0).on_conflict_do_nothing()
    )
    await session.execute(
        update(RegionCount)
        .where(RegionCount.day == day, RegionCount.country == country)
        .values(count=RegionCount.count + 1)
    )


class RegionStats:
    """Count logins per day and country in the database and in metrics."""

    def __init__(self, db: Database, metrics: Metrics, clock: Clock = utc_now) -> None:
        self._db = db
        self._metrics = metrics
        self._clock = clock

    async def record_login(self, country: str) -> str:
        """Count one login from `country` (normalized first) and return the code counted."""
        code = normalize_country(country)
        async with self._db.write() as session:
            await add_region_count(session, day=self._clock().date(), country=code)
        self._metrics.count_region(code)
        return code
