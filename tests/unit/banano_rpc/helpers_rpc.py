"""Constants and helpers shared by the node client's unit tests."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "banano"
# respx intercepts this URL, so nothing leaves the process.
NODE_URL = "http://127.0.0.1:7072/"


async def no_sleep(_seconds: float) -> None:
    """Stand in for asyncio.sleep so retries do not wait."""
