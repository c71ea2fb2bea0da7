"""Edge cases of ed25519-blake2b verification, built by hand and compared with the reference.

The points here are built with a small edwards25519 implementation on Python ints, which is
fine in a test: nothing secret goes through it. Each case checks what `verify_signature` returns,
what the reference package does, and whether a key or signature of that kind can come from a
real wallet (a key derived from a private key, a signature made by RFC 8032's signing).
"""

from __future__ import annotations

import hashlib
import threading
import traceback
from collections.abc import Callable

import ed25519_blake2b
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.banano import keys as keys_module
from core.banano.keys import GROUP_ORDER, KeyPair, verify_signature

P = 2**255 - 19
D = (-121665 * pow(121666, P - 2, P)) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)
Point = tuple[int, int, int, int]
IDENTITY: Point = (0, 1, 1, 0)


def _add(a: Point, b: Point) -> Point:
    # Extended coordinates, the complete addition law of RFC 8032 section 5.1.4.
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa = (y1 - x1) * (y2 - x2) % P
    bb = (y1 + x1) * (y2 + x2) % P
    cc = 2 * t1 * t2 * D % P
    dd = 2 * z1 * z2 % P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _mul(scalar: int, point: Point) -> Point:
    result = IDENTITY
    while scalar > 0:
        if scalar & 1:
            result = _add(result, point)
        point = _add(point, point)
        scalar >>= 1
    return result


def _neg(point: Point) -> Point:
    x, y, z, t = point
    return (-x % P, y, z, -t % P)


def _encode(point: Point) -> bytes:
    x, y, z, _ = point
    inverse = pow(z, P - 2, P)
    x, y = x * inverse % P, y * inverse % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def _x_of(y: int, sign: int) -> int | None:
    u, v = (y * y - 1) % P, (D * y * y + 1) % P
    x = u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P) % P
    if v * x * x % P == (-u) % P:
        x = x * SQRT_M1 % P
    elif v * x * x % P != u:
        return None
    if x == 0 and sign:
        return None
    if x & 1 != sign:
        x = P - x
    return x


def _decode_loose(encoded: bytes) -> Point | None:
    # Reads y modulo p, as the ref10 code of the reference package does with y >= p.
    number = int.from_bytes(encoded, "little")
    y = (number & ((1 << 255) - 1)) % P
    x = _x_of(y, number >> 255)
    return None if x is None else (x, y, 1, x * y % P)


_BASE_OR_NONE = _decode_loose(bytes.fromhex("58" + "66" * 31))
assert _BASE_OR_NONE is not None
BASE: Point = _BASE_OR_NONE


def _torsion() -> list[Point]:
    """The eight points of order dividing 8."""
    # [L]P of a curve point P lies in the 8-torsion; the first P whose [L]P has order 8 is used.
    for y in range(2, 100):
        candidate = _decode_loose(y.to_bytes(32, "little"))
        if candidate is None:
            continue
        small = _mul(GROUP_ORDER, candidate)
        if _encode(_mul(4, small)) != _encode(IDENTITY):
            return [_mul(i, small) for i in range(8)]
    raise AssertionError("no point of order 8 found")


TORSION = _torsion()


def _hash_scalar(*parts: bytes) -> int:
    digest = hashlib.blake2b(b"".join(parts), digest_size=64).digest()
    return int.from_bytes(digest, "little") % GROUP_ORDER


def _secret_scalar(private_key: bytes) -> tuple[int, bytes]:
    digest = hashlib.blake2b(private_key, digest_size=64).digest()
    scalar = int.from_bytes(digest[:32], "little")
    return (scalar & ~7 & ((1 << 255) - 1)) | (1 << 254), digest[32:]


def _reference_accepts(public_key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        ed25519_blake2b.VerifyingKey(public_key).verify(signature, message)
    except (ed25519_blake2b.BadSignatureError, ValueError, AssertionError):
        return False
    return True


PRIVATE_KEY = bytes(range(32))
KEY = KeyPair.from_private_key(PRIVATE_KEY)
MESSAGE = bytes.fromhex("AB" * 32)


def test_own_edwards_code_matches_the_signer() -> None:
    scalar, _ = _secret_scalar(PRIVATE_KEY)
    assert _encode(_mul(scalar, BASE)) == KEY.public_key


def test_s_plus_order_rejected_though_the_reference_accepts() -> None:
    # S + L < 2**253, so the reference's check of the top three bits lets it through. No
    # signer emits it; rejecting it keeps one signature per block.
    signature = KEY.sign(MESSAGE)
    s_value = int.from_bytes(signature[32:], "little")
    malleated = signature[:32] + (s_value + GROUP_ORDER).to_bytes(32, "little")

    assert _reference_accepts(KEY.public_key, MESSAGE, malleated)
    assert not verify_signature(KEY.public_key, MESSAGE, malleated)


def test_identity_commitment_accepted_by_both() -> None:
    # R = identity and S = k*a: a valid equation that only the key holder can make.
    scalar, _ = _secret_scalar(PRIVATE_KEY)
    commitment = _encode(IDENTITY)
    challenge = _hash_scalar(commitment, KEY.public_key, MESSAGE)
    s_value = challenge * scalar % GROUP_ORDER
    signature = commitment + s_value.to_bytes(32, "little")

    assert _reference_accepts(KEY.public_key, MESSAGE, signature)
    assert verify_signature(KEY.public_key, MESSAGE, signature)


def test_zero_s_rejected_without_error() -> None:
    for commitment in (_encode(IDENTITY), _encode(BASE), KEY.sign(MESSAGE)[:32]):
        signature = commitment + bytes(32)
        assert not verify_signature(KEY.public_key, MESSAGE, signature)
        assert not _reference_accepts(KEY.public_key, MESSAGE, signature)


def _non_canonical(encoded: bytes) -> bytes | None:
    """The same point with y + p in place of y, when y + p still fits in 255 bits."""
    number = int.from_bytes(encoded, "little")
    y, sign = number & ((1 << 255) - 1), number >> 255
    if y + P >= 1 << 255:
        return None
    return ((y + P) | (sign << 255)).to_bytes(32, "little")


def test_non_canonical_commitment_rejected_by_both() -> None:
    # Only a point with y < 19 has a second encoding y + p. No [r]B is known to have such a
    # y, so the small-order points with such an encoding stand in for R here.
    scalar, _ = _secret_scalar(PRIVATE_KEY)
    for point in TORSION:
        canonical = _encode(point)
        loose = _non_canonical(canonical)
        if loose is None:
            continue
        # R = T is not [S]B - [k]A for any S when A has prime order, so both reject.
        challenge = _hash_scalar(loose, KEY.public_key, MESSAGE)
        s_value = challenge * scalar % GROUP_ORDER
        signature = loose + s_value.to_bytes(32, "little")
        assert not verify_signature(KEY.public_key, MESSAGE, signature)
        assert not _reference_accepts(KEY.public_key, MESSAGE, signature)


def test_non_canonical_identity_commitment() -> None:
    # R is the identity written as y = 1 + p. [S]B - [k]A = identity encodes as y = 1,
    # which differs from R's bytes, so byte comparison rejects it; the reference too.
    scalar, _ = _secret_scalar(PRIVATE_KEY)
    loose = _non_canonical(_encode(IDENTITY))
    assert loose is not None
    challenge = _hash_scalar(loose, KEY.public_key, MESSAGE)
    s_value = challenge * scalar % GROUP_ORDER
    signature = loose + s_value.to_bytes(32, "little")

    assert not verify_signature(KEY.public_key, MESSAGE, signature)
    assert not _reference_accepts(KEY.public_key, MESSAGE, signature)


def _mixed_order_forgery(torsion_index: int) -> tuple[bytes, bytes]:
    """A key A + T (T of small order) and a signature that passes [S]B - [k]A' = R."""
    scalar, _ = _secret_scalar(PRIVATE_KEY)
    torsion = TORSION[torsion_index]
    mixed = _add(_mul(scalar, BASE), torsion)
    mixed_key = _encode(mixed)
    for nonce in range(1, 2000):
        nonce_point = _mul(nonce, BASE)
        for j in range(8):
            commitment_point = _add(nonce_point, TORSION[j])
            commitment = _encode(commitment_point)
            challenge = _hash_scalar(commitment, mixed_key, MESSAGE)
            # [S]B - [k](aB + T) = [r]B + T_j needs S = r + k*a and -[k]T = T_j.
            if _encode(_neg(_mul(challenge, torsion))) != _encode(TORSION[j]):
                continue
            s_value = (nonce + challenge * scalar) % GROUP_ORDER
            return mixed_key, commitment + s_value.to_bytes(32, "little")
    raise AssertionError("no forgery found")


@pytest.mark.parametrize("torsion_index", [1, 2, 4])
def test_mixed_order_key_rejected_though_the_reference_accepts(torsion_index: int) -> None:
    # No private key derives A + T, so a real wallet never has such a key.
    mixed_key, signature = _mixed_order_forgery(torsion_index)

    assert _reference_accepts(mixed_key, MESSAGE, signature)
    assert not verify_signature(mixed_key, MESSAGE, signature)


@pytest.mark.parametrize("index", range(8))
def test_small_order_keys_rejected(index: int) -> None:
    small_key = _encode(TORSION[index])
    signature = _encode(BASE) + (1).to_bytes(32, "little")
    assert not verify_signature(small_key, MESSAGE, signature)
    loose = _non_canonical(small_key)
    if loose is not None:
        assert not verify_signature(loose, MESSAGE, signature)


def test_non_canonical_key_with_x_zero_sign_set() -> None:
    # x = 0 with the sign bit set: identity and (0, -1) written with a sign.
    for y in (1, P - 1):
        encoded = (y | (1 << 255)).to_bytes(32, "little")
        signature = _encode(BASE) + (1).to_bytes(32, "little")
        assert not verify_signature(encoded, MESSAGE, signature)


@pytest.mark.parametrize("length", [0, 1, 31, 32, 33, 63, 64, 65, 127, 128, 129, 1 << 20])
def test_messages_of_any_length(length: int) -> None:
    message = bytes(i * 7 % 256 for i in range(length))
    signature = KEY.sign(message)
    assert signature == ed25519_blake2b.SigningKey(PRIVATE_KEY).sign(message)
    assert verify_signature(KEY.public_key, message, signature)
    assert _reference_accepts(KEY.public_key, message, signature)


@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=32, max_size=32), st.binary(min_size=64, max_size=64), st.binary())
def test_random_inputs_never_accepted_where_the_reference_rejects(
    public_key: bytes, signature: bytes, message: bytes
) -> None:
    if verify_signature(public_key, message, signature):
        assert _reference_accepts(public_key, message, signature)


@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=32, max_size=32), st.binary(max_size=64), st.integers(0, 7))
def test_valid_key_with_torsion_commitment(
    private_key: bytes, message: bytes, torsion_index: int
) -> None:
    # A key holder's signature whose R carries a small-order component. The cofactorless
    # equation fails for both, since [S]B - [k]A has prime order.
    key = KeyPair.from_private_key(private_key)
    scalar, _ = _secret_scalar(private_key)
    nonce = _hash_scalar(b"test nonce", private_key, message) or 1
    commitment = _encode(_add(_mul(nonce, BASE), TORSION[torsion_index]))
    challenge = _hash_scalar(commitment, key.public_key, message)
    s_value = (nonce + challenge * scalar) % GROUP_ORDER
    signature = commitment + s_value.to_bytes(32, "little")
    expected = torsion_index == 0
    assert verify_signature(key.public_key, message, signature) is expected
    assert _reference_accepts(key.public_key, message, signature) is expected


@pytest.mark.parametrize("message", [bytearray(b"abc"), memoryview(b"abc")], ids=repr)
def test_bytes_like_messages(message: bytearray | memoryview) -> None:
    signature = KEY.sign(b"abc")

    assert verify_signature(KEY.public_key, message, signature)  # type: ignore[arg-type]


def test_concurrent_signing_matches_serial() -> None:
    keys = [KeyPair.from_private_key(bytes([i]) * 32) for i in range(4)]
    messages = [hashlib.blake2b(bytes([i]), digest_size=32).digest() for i in range(50)]
    expected = {(k, m): keys[k].sign(messages[m]) for k in range(4) for m in range(50)}
    mismatches: list[tuple[int, int]] = []
    barrier = threading.Barrier(8)

    def work(worker: int) -> None:
        barrier.wait()
        for round_ in range(20):
            for m in range(50):
                k = (worker + round_ + m) % 4
                if keys[k].sign(messages[m]) != expected[(k, m)]:
                    mismatches.append((k, m))
                if not verify_signature(keys[k].public_key, messages[m], expected[(k, m)]):
                    mismatches.append((k, -m))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert mismatches == []


def _secret_texts(key: KeyPair, private_key: bytes) -> list[str]:
    scalar, prefix = keys_module._expand(private_key)
    texts = []
    for secret in (private_key, scalar, prefix):
        texts += [secret.hex(), secret.hex().upper(), repr(secret)]
    return texts


@pytest.mark.parametrize(
    "trigger",
    [
        lambda key: key.sign("text"),
        lambda key: key.sign(None),
        lambda key: KeyPair(key.private_key, bytes(32), key.address),
        lambda key: KeyPair(key.private_key, key.public_key, "ban_1"),
        lambda key: KeyPair(key.private_key[:31], key.public_key, key.address),
    ],
    ids=["str", "none", "wrong-public", "wrong-address", "short-private"],
)
def test_errors_do_not_show_secrets(trigger: Callable[[KeyPair], object]) -> None:
    with pytest.raises(Exception) as raised:  # noqa: PT011 - any error, its text is checked
        trigger(KEY)
    text = "".join(traceback.format_exception(raised.value))
    for secret in _secret_texts(KEY, PRIVATE_KEY):
        assert secret not in text


def test_nonce_zero_error_does_not_show_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    # Force the nonce to reduce to 0 (probability 2**-252 otherwise) to see libsodium's error.
    real_reduce = keys_module._reduce
    calls = []

    def reduce_first_to_zero(digest: bytes) -> bytes:
        calls.append(digest)
        return bytes(32) if len(calls) == 1 else real_reduce(digest)

    monkeypatch.setattr(keys_module, "_reduce", reduce_first_to_zero)
    with pytest.raises(RuntimeError) as raised:
        KEY.sign(MESSAGE)
    text = "".join(traceback.format_exception(raised.value))
    for secret in _secret_texts(KEY, PRIVATE_KEY):
        assert secret not in text
