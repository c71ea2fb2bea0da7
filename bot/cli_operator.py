"""The CLI commands about the operator account: `operator address`.

The operator account is account 0 of the operator seed, for both signers: the local signer
signs with its key, and the node-wallet signer sends from its address.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from bot.cli_run import _add_config_dir, _load
from core.errors import Pay2SlayError

if TYPE_CHECKING:
    Subcommands = argparse._SubParsersAction[argparse.ArgumentParser]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG_ERROR = 2


def add_operator_commands(commands: Subcommands) -> None:
    """Add `operator address`."""
    operator = commands.add_parser("operator", help="inspect the operator account")
    operator_commands = operator.add_subparsers(metavar="COMMAND", required=True)

    address = operator_commands.add_parser(
        "address",
        help="print the operator account's address, to fund it",
        description=(
            "Derive the operator account from the operator seed (P2S_OPERATOR_SEED, "
            "P2S_OPERATOR_SEED_FILE or operator_seed in P2S_SECRETS_DIR) and print its ban_ "
            "address, which payouts are sent from. Prints nothing else; the seed is never shown."
        ),
    )
    _add_config_dir(address)
    address.set_defaults(handler=print_operator_address)


def print_operator_address(args: argparse.Namespace) -> int:
    """Run `pay2slay operator address`."""
    settings = _load(args, for_run=False)
    if settings is None:
        return EXIT_CONFIG_ERROR

    # Imported here because bot.payments loads the Banano and HTTP clients, which the other
    # commands do not need.
    from bot.payments import operator_key

    try:
        key = operator_key(settings)
    except Pay2SlayError as error:
        print(f"operator address failed: {error.safe_message}", file=sys.stderr)
        return EXIT_FAILED
    if key is None:
        print(
            "operator address failed: the operator seed is not set; set P2S_OPERATOR_SEED "
            "(or P2S_OPERATOR_SEED_FILE, or operator_seed in P2S_SECRETS_DIR).",
            file=sys.stderr,
        )
        return EXIT_CONFIG_ERROR

    print(key.address)
    return EXIT_OK
