"""Child entry points that do almost nothing, for the tests of the campaign's child handling.

The fork server imports them by module name. Pytest imports a test module under a name of its
own, so they cannot live there.
"""

from __future__ import annotations

from multiprocessing.connection import Connection


def send_one_event_and_exit(options: object, connection: Connection) -> None:
    """Report `started` and end at once, without waiting for the campaign."""
    connection.send(("started", str(options)))
    connection.close()


def send_one_event_and_wait(options: object, connection: Connection) -> None:
    """Report `started` and wait for the campaign's reply."""
    connection.send(("started", str(options)))
    connection.recv()
