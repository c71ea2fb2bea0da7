"""Entry point for `python -m bot`, the same as the `pay2slay` command."""

from bot.cli import main

raise SystemExit(main())
