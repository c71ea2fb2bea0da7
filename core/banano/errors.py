"""Errors raised by the Banano primitives: amounts, addresses, keys, blocks and proof of work.

Each error's `safe_message` may echo a shortened address or amount text, never a seed or key.
The value errors also subclass `ValueError` so pydantic validators turn them into validation
errors without wrapping.
"""

from __future__ import annotations

from core.errors import Pay2SlayError

ADDRESS_FORMAT_HINT = (
    "A Banano address is ban_ followed by 60 lower-case characters and starts with ban_1 or ban_3."
)


def shorten_for_message(text: str, max_length: int = 24) -> str:
    """Shorten untrusted text for an error message and replace characters that are not printable.

    Keeps the head and the tail, which is enough to recognise an address or an amount.
    """
    if text.isascii() and text.isprintable():
        printable = text
    else:
        printable = "".join(c if c.isascii() and c.isprintable() else "?" for c in text)
    if len(printable) <= max_length:
        return printable
    head_length = max_length - 8
    return f"{printable[:head_length]}...{printable[-5:]}"


class InvalidAmountError(Pay2SlayError, ValueError):
    """An amount that is not an exact, non-negative BAN or raw value within 128 bits."""

    safe_message = "The amount is not valid. Use a plain decimal number of BAN, such as 2.1."


class AmountTypeError(InvalidAmountError, TypeError):
    """An amount of a type that cannot be exact, such as float or bool."""

    safe_message = "The amount must be decimal text, a Decimal or an int, never a float."


class InsufficientBalanceError(Pay2SlayError):
    """A send whose amount is larger than the account's balance."""

    safe_message = "The account balance is lower than the amount to send."


class InvalidAddressError(Pay2SlayError, ValueError):
    """A text that is not a valid `ban_` address."""

    safe_message = f"The address is not valid. {ADDRESS_FORMAT_HINT}"


class AddressPrefixError(InvalidAddressError):
    """An address that does not start with the lower-case `ban_` prefix."""


class AddressLengthError(InvalidAddressError):
    """An address whose part after `ban_` is not 60 characters long."""


class AddressAlphabetError(InvalidAddressError):
    """An address containing a character outside the Banano base32 alphabet."""


class AddressFirstCharacterError(InvalidAddressError):
    """An address whose first character after `ban_` is not 1 or 3."""


class AddressChecksumError(InvalidAddressError):
    """An address whose last 8 characters do not match the checksum of its public key."""


class PayoutDestinationError(InvalidAddressError):
    """A valid address that must not receive payouts."""


class BurnAddressError(PayoutDestinationError):
    """The burn address, whose funds cannot be spent because no private key is known for it."""

    safe_message = (
        "That is the Banano burn address: anything sent there is lost for good. "
        "Register the address of a wallet you own."
    )


class OperatorAddressError(PayoutDestinationError):
    """The faucet's own operator account."""

    safe_message = (
        "That is the faucet's own account, so it cannot receive payouts. "
        "Register the address of a wallet you own."
    )


class InvalidKeyError(Pay2SlayError, ValueError):
    """A malformed seed, index, private key or public key. The message never shows the value."""

    safe_message = "The key material is not valid."


class InvalidBlockError(Pay2SlayError, ValueError):
    """A state block with a missing or malformed field."""

    safe_message = "The block is not a valid Banano state block."


class InvalidWorkError(Pay2SlayError, ValueError):
    """A malformed proof-of-work root, nonce or threshold."""

    safe_message = "The proof-of-work input is not valid."


class WorkNotFoundError(Pay2SlayError):
    """A local proof-of-work search that used up its iterations without a result."""

    safe_message = "Local proof of work found no result within the iteration limit."


class LocalWorkError(Pay2SlayError, RuntimeError):
    """A local proof-of-work search that failed because a worker process died."""

    safe_message = "Local proof of work failed because a worker process stopped."


class WorkGeneratorClosedError(LocalWorkError):
    """A local proof-of-work search on a generator that was closed before or during it."""

    safe_message = "Local proof of work is not available because its generator was closed."
