"""Country codes from a trusted header, never from an untrusted one."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from core.services.regions import RegionResolver, normalize_country


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("de", "DE"),
        (" US ", "US"),
        ("XX", "unknown"),
        ("T1", "unknown"),
        ("", "unknown"),
        (None, "unknown"),
        ("DEU", "unknown"),
        ("<b>", "unknown"),
    ],
)
def test_normalize_country(value: str | None, expected: str) -> None:
    assert normalize_country(value) == expected


def test_trusted_header_used() -> None:
    resolver = RegionResolver("CF-IPCountry")

    assert resolver.country_for({"CF-IPCountry": "fr"}, "203.0.113.9") == "FR"


def test_untrusted_header_ignored() -> None:
    resolver = RegionResolver("")

    assert resolver.country_for({"CF-IPCountry": "FR"}, "203.0.113.9") == "unknown"


def test_geoip_without_reader_package_is_unknown() -> None:
    with capture_logs() as events:
        resolver = RegionResolver("", "/nonexistent/GeoLite2-Country.mmdb")

    assert not resolver.uses_geoip
    assert resolver.country_for({}, "203.0.113.9") == "unknown"
    assert any(
        event["event"] in {"geoip_reader_missing", "geoip_database_unreadable"} for event in events
    )
