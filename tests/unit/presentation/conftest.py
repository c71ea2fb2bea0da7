"""A strict catalog and product settings for the renderer tests."""

from __future__ import annotations

import pytest

from core.config.product import FeatureFlags, ProductSettings
from core.i18n import MessageCatalog


@pytest.fixture(scope="session")
def catalog() -> MessageCatalog:
    return MessageCatalog.load(strict=True)


@pytest.fixture(scope="session")
def product() -> ProductSettings:
    return ProductSettings(
        app_name="Pay2Slay Faucet",
        org_name="Example Org",
        banner_url="https://media.example/banner.png",
        media_kit_url="",
        default_locale="en",
        feature_flags=FeatureFlags(dry_run_banner=True),
    )
