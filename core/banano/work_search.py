"""Proof of work: validation against a threshold and a local CPU search.

The work value of a nonce is the 8-byte Blake2b digest of the nonce (8 bytes little-endian)
followed by the 32-byte root, read as a little-endian unsigned integer. Work is valid when
the value is at least the threshold. The root is the previous block's hash, or the account's
public key for its first block. JSON carries the nonce as 16 lower-case hex digits.
"""

from __future__ import annotations

import hashlib
import re
import secrets

from core.banano.blocks import StateBlock
from core.banano.errors import InvalidWorkError, WorkNotFoundError

# The threshold that Banano nodes apply to send and receive blocks.
WORK_THRESHOLD = 0xFFFFFE0000000000
MAX_NONCE = 2**64 - 1

# Nonces per chunk of `generate_work_local`, which runs on the calling thread and cannot be
# cancelled, so the size only sets how often its loop checks the nonce range.
DEFAULT_CHUNK_ITERATIONS = 1 << 20

_ROOT_HEX = re.compile(r"[0-9A-Fa-f]{64}", re.ASCII)
_WORK_HEX = re.compile(r"[0-9A-Fa-f]{16}", re.ASCII)
_NONCE_COUNT = MAX_NONCE + 1


def root_bytes(root_hex: str) -> bytes:
    """Return the 32 bytes of a 64-hex-digit work root, or raise `InvalidWorkError`."""
    if not isinstance(root_hex, str) or _ROOT_HEX.fullmatch(root_hex) is None:
        raise InvalidWorkError("The work root must be 64 hexadecimal digits.")
    return bytes.fromhex(root_hex)


def check_threshold(threshold: int) -> int:
    """Return `threshold` if it is an unsigned 64-bit int, or raise `InvalidWorkError`."""
    if isinstance(threshold, bool) or not isinstance(threshold, int):
        raise InvalidWorkError("The work threshold must be an int.")
    if not 0 <= threshold <= MAX_NONCE:
        raise InvalidWorkError("The work threshold must be an unsigned 64-bit integer.")
    return threshold


def _nonce_value(root: bytes, nonce: int) -> int:
    digest = hashlib.blake2b(nonce.to_bytes(8, "little") + root, digest_size=8).digest()
    return int.from_bytes(digest, "little")


def work_value(root_hex: str, work_hex: str) -> int:
    """Compute the work value of the nonce `work_hex` (16 hex digits) for `root_hex`."""
    if not isinstance(work_hex, str) or _WORK_HEX.fullmatch(work_hex) is None:
        raise InvalidWorkError("The work must be 16 hexadecimal digits.")
    return _nonce_value(root_bytes(root_hex), int(work_hex, 16))


def is_valid_work(root_hex: str, work_hex: str, threshold: int = WORK_THRESHOLD) -> bool:
    """Return whether `work_hex` reaches `threshold` for `root_hex`."""
    return work_value(root_hex, work_hex) >= check_threshold(threshold)


def work_root(block: StateBlock) -> str:
    """Return the root that a block's work is computed on, as 64 upper-case hex digits."""
    if block.is_open:
        return block.account_public_key.hex().upper()
    return block.previous


def _search_range(root: bytes, threshold: int, start_nonce: int, iterations: int) -> int | None:
    # This is the hot loop: copying a prepared hash object is faster than building one, and
    # the top byte of the little-endian value is checked before the whole value.
    copy_empty_hash = hashlib.blake2b(digest_size=8).copy
    top_byte_threshold = threshold >> 56
    end_nonce = min(start_nonce + iterations, _NONCE_COUNT)
    for nonce in range(start_nonce, end_nonce):
        state = copy_empty_hash()
        state.update(nonce.to_bytes(8, "little"))
        state.update(root)
        digest = state.digest()
        if digest[7] >= top_byte_threshold and int.from_bytes(digest, "little") >= threshold:
            return nonce
    return None


def search_work_chunk(
    root_hex: str, threshold: int, start_nonce: int, iterations: int
) -> str | None:
    """Try `iterations` consecutive nonces from `start_nonce`, wrapping after 2**64 - 1.

    Returns the first valid nonce as 16 lower-case hex digits, or None. This is the unit of
    work that `LocalWorkGenerator` sends to its worker processes.
    """
    root = root_bytes(root_hex)
    check_threshold(threshold)
    if not 0 <= start_nonce <= MAX_NONCE or iterations < 0:
        raise InvalidWorkError("The start nonce or the iteration count is out of range.")

    remaining = min(iterations, _NONCE_COUNT)
    nonce = start_nonce
    while remaining > 0:
        span = min(remaining, _NONCE_COUNT - nonce)
        found = _search_range(root, threshold, nonce, span)
        if found is not None:
            return f"{found:016x}"
        remaining -= span
        nonce = 0
    return None


def generate_work_local(
    root_hex: str,
    threshold: int,
    max_iterations: int | None = None,
    *,
    start_nonce: int | None = None,
) -> str:
    """Search for valid work on the calling thread, from a random nonce unless one is given.

    This blocks for seconds at `WORK_THRESHOLD`; async code uses `LocalWorkGenerator`.
    Raises `WorkNotFoundError` when `max_iterations` nonces were tried without success.
    """
    root_bytes(root_hex)
    check_threshold(threshold)
    nonce = secrets.randbits(64) if start_nonce is None else start_nonce
    if max_iterations is not None:
        found = search_work_chunk(root_hex, threshold, nonce, max_iterations)
        if found is None:
            raise WorkNotFoundError()
        return found

    while True:
        found = search_work_chunk(root_hex, threshold, nonce, DEFAULT_CHUNK_ITERATIONS)
        if found is not None:
            return found
        nonce = (nonce + DEFAULT_CHUNK_ITERATIONS) & MAX_NONCE
