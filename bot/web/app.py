"""The side web server's aiohttp application.

Each group of routes is mounted by its own `add_*_routes(app, ...)` function, so the process
wiring decides which groups run and tests can mount one group alone.
"""

from __future__ import annotations

from aiohttp import web

from bot.web.oauth import OAuthRoutesConfig, add_oauth_routes

# Requests to the side server are small GETs; anything larger is refused early.
MAX_REQUEST_BYTES = 64 * 1024


def create_web_app(*, oauth: OAuthRoutesConfig | None = None) -> web.Application:
    """Create the application with the Discord OAuth routes when `oauth` is given."""
    app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    if oauth is not None:
        add_oauth_routes(app, oauth)
    return app
