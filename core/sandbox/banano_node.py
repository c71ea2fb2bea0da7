"""A local Banano node for tests and the sandbox command: RPC over HTTP on loopback.

It keeps a ledger of account chains and validates every `process` like a node: JSON shape,
signature, proof of work at `work_threshold`, previous against the frontier (fork or gap),
balance arithmetic, receivable sends, and duplicates ("Old block"). Blocks are confirmed
`confirmation_delay` seconds after they are applied, or on demand.

Accounts get money with `fund`: the sandbox's genesis account sends to the address, which
leaves a receivable send, and with `key` given the sandbox also receives it for the account,
so the account is opened with that balance. Funding blocks skip the work check.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog
from aiohttp import web

from core.banano.address import decode_address
from core.banano.blocks import StateBlock, build_send
from core.banano.errors import InvalidAddressError, InvalidBlockError, InvalidWorkError
from core.banano.keys import KeyPair
from core.banano.work import (
    WORK_THRESHOLD,
    LocalWorkGenerator,
    generate_work_local,
    is_valid_work,
    work_root,
    work_value,
)
from core.clock import Clock, utc_now
from core.sandbox import banano_replies as replies
from core.sandbox.banano_faults import Fault, FaultKind, InjectedFault
from core.sandbox.banano_ledger import BananoLedger, LedgerBlock, RpcError

log = structlog.get_logger(__name__)

_Handler = Callable[[Mapping[str, Any]], Awaitable[dict[str, Any]]]
_CONTROL_ACTIONS = frozenset({"work_generate", "send"})
_MALFORMED_BODY = '{"hash": "E2FB233EF4554077A7BF1AA8'
# Work at thresholds this easy, which tests use, is searched on the event loop. At the rate
# that tests/benchmarks/bench_banano_primitives.py measured on one core of a 2-vCPU Xeon host
# (3.4 million nonces per second), 2**14 nonces take about 5 ms.
_INLINE_WORK_MAX_EXPECTED_NONCES = 1 << 14


class SandboxBananoNode:
    """Banano node RPC over a validating in-memory ledger, with faults on demand.

    `work_threshold` defaults to the real one; tests pass a lower one such as
    0xFFF0000000000000 so that work takes milliseconds. `enable_control=False` returns
    "RPC control is disabled" for `work_generate` and `send`, as public nodes do.
    `subtype_check_first=True` runs the `process` subtype check before the duplicate check,
    the order the Nano node uses, in which a repeated send can get "Invalid block balance
    for given subtype" instead of "Old block".
    """

    def __init__(
        self,
        work_threshold: int = WORK_THRESHOLD,
        confirmation_delay: float = 0.0,
        *,
        enable_control: bool = True,
        subtype_check_first: bool = False,
        clock: Clock = utc_now,
    ) -> None:
        self.ledger = BananoLedger(work_threshold)
        self.confirmation_delay = confirmation_delay
        self.enable_control = enable_control
        self.subtype_check_first = subtype_check_first
        self._clock = clock
        self._auto_confirm = True
        self._confirm_timers: set[asyncio.TimerHandle] = set()
        self._faults: dict[str, list[InjectedFault]] = {}
        self._wallets: dict[str, dict[str, KeyPair]] = {}
        self._send_ids: dict[tuple[str, str], str] = {}
        self._wallet_locks: dict[str, asyncio.Lock] = {}
        self._work_generator: LocalWorkGenerator | None = None
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self._base_url: str | None = None
        self.request_counts: Counter[str] = Counter()
        self._handlers: dict[str, _Handler] = {
            "process": self._process,
            "send": self._wallet_send,
            "work_generate": self._work_generate,
        }

    @property
    def base_url(self) -> str:
        """The RPC URL; requests are POSTed to it."""
        if self._base_url is None:
            raise RuntimeError("the Banano sandbox node is not running")
        return self._base_url

    @property
    def genesis(self) -> KeyPair:
        """The key of the account that funds every other account."""
        return self.ledger.genesis

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on a loopback address and return the RPC URL (port 0 picks a free port)."""
        if self._runner is not None:
            raise RuntimeError("the Banano sandbox node is already running")
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"the sandbox listens only on loopback addresses, not {host}")

        self._stopping = asyncio.Event()
        self._work_generator = LocalWorkGenerator(processes=1)
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_post("/", self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()

        self._runner = runner
        bound_port = runner.addresses[0][1]
        url_host = f"[{host}]" if ":" in host else host
        self._base_url = f"http://{url_host}:{bound_port}/"
        log.info("sandbox_banano_node_started", url=self._base_url)
        return self._base_url

    async def stop(self) -> None:
        """Stop listening, end delayed replies, cancel confirmations and stop work processes."""
        self._stopping.set()
        for timer in self._confirm_timers:
            timer.cancel()
        self._confirm_timers.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self._base_url = None
        if self._work_generator is not None:
            await self._work_generator.aclose()
            self._work_generator = None
        log.info("sandbox_banano_node_stopped")

    # Setting state and reading the ledger, for tests and the sandbox command.

    def fund(self, address: str, amount_raw: int, *, key: KeyPair | None = None) -> str:
        """Send `amount_raw` from genesis to `address`, and receive it as well if `key` is given.

        Returns the hash of the send. Funding blocks are confirmed at once.
        """
        send_entry, receive_entry = self.ledger.fund(address, amount_raw, self._timestamp(), key)
        self.ledger.confirm(send_entry.hash)
        if receive_entry is not None:
            self.ledger.confirm(receive_entry.hash)
        return send_entry.hash

    def add_wallet_key(self, wallet_id: str, key: KeyPair) -> None:
        """Put an account's key in a node wallet, creating the wallet on first use."""
        self._wallets.setdefault(wallet_id, {})[key.address] = key

    def inject_fault(self, action: str, fault: Fault, times: int = 1) -> None:
        """Give the next `times` requests of `action` this fault, after faults queued before."""
        if times < 1:
            raise ValueError("times must be at least 1")
        self._faults.setdefault(action, []).append(InjectedFault(fault, times))

    def clear_faults(self) -> None:
        """Remove every fault not used yet."""
        self._faults.clear()

    def set_auto_confirm(self, enabled: bool) -> None:
        """Turn confirmation of new blocks after `confirmation_delay` on or off."""
        self._auto_confirm = enabled

    def confirm(self, block_hash: str) -> None:
        """Confirm a block and the blocks before it in its account."""
        self.ledger.confirm(block_hash.upper())

    def confirm_all(self) -> None:
        """Confirm every block."""
        self.ledger.confirm_all()

    def block(self, block_hash: str) -> LedgerBlock | None:
        """Return a block of the ledger by hash, or None."""
        return self.ledger.blocks.get(block_hash.upper())

    def balance_of(self, address: str) -> int:
        """Return the account's balance including unconfirmed blocks (0 when unopened)."""
        account = self.ledger.accounts.get(address)
        return 0 if account is None else account.balance_raw

    def confirmed_balance_of(self, address: str) -> int:
        """Return the balance after the account's highest confirmed block."""
        account = self.ledger.accounts.get(address)
        return 0 if account is None else self.ledger.confirmed_balance_of(account)

    def frontier_of(self, address: str) -> str | None:
        """Return the hash of the account's newest block, or None when unopened."""
        account = self.ledger.accounts.get(address)
        return None if account is None else account.frontier

    def blocks_sent_to(self, address: str) -> list[LedgerBlock]:
        """Return every send to `address` in the ledger, received or not."""
        return [
            entry
            for entry in self.ledger.blocks.values()
            if entry.subtype == "send" and entry.counterparty == address
        ]

    def total_sent_to(self, address: str) -> int:
        """Return the sum in raw of every send to `address`."""
        return sum(entry.amount_raw for entry in self.blocks_sent_to(address))

    def receivable_of(self, address: str) -> dict[str, int]:
        """Return the sends to `address` not received yet, confirmed or not."""
        return dict(self.ledger.receivable.get(address, {}))

    @property
    def block_count(self) -> int:
        """The number of blocks in the ledger, the genesis block included."""
        return len(self.ledger.blocks)

    # HTTP handling.

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        try:
            payload = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return web.json_response({"error": "Unable to parse JSON"})
        if not isinstance(payload, dict) or not isinstance(payload.get("action"), str):
            return web.json_response({"error": "Unable to parse JSON"})

        action: str = payload["action"]
        self.request_counts[action] += 1
        fault = self._take_fault(action)
        if fault is not None:
            log.info("sandbox_banano_fault", action=action, fault=fault.kind.value)
            if fault.kind is FaultKind.DELAY:
                try:
                    async with asyncio.timeout(fault.delay_seconds):
                        await self._stopping.wait()
                except TimeoutError:
                    pass
                else:
                    return web.Response(status=503, text="Service Unavailable")
            elif fault.kind is FaultKind.ERROR:
                return web.json_response({"error": fault.error_text})
            elif fault.kind is FaultKind.HTTP_500:
                return web.Response(status=500, text="Internal Server Error")
            elif fault.kind is FaultKind.MALFORMED_JSON:
                return web.Response(text=_MALFORMED_BODY, content_type="application/json")
            elif fault.kind is FaultKind.RAW_BODY and not fault.apply_first:
                return web.Response(text=fault.body, content_type="application/json")

        reply = await self._reply(action, payload)
        if fault is None:
            return web.json_response(reply)
        if fault.kind is FaultKind.REPLY_LOST_AFTER_APPLY:
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=204)
        if fault.kind is FaultKind.RAW_BODY:
            return web.Response(text=fault.body, content_type="application/json")
        if fault.kind is FaultKind.TRICKLE:
            return await self._trickle(request, json.dumps(reply), fault.delay_seconds)
        return web.json_response(reply)

    async def _trickle(
        self, request: web.Request, body: str, seconds_per_byte: float
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        try:
            for byte in body.encode():
                try:
                    async with asyncio.timeout(seconds_per_byte):
                        await self._stopping.wait()
                except TimeoutError:
                    pass
                else:
                    return response
                await response.write(bytes([byte]))
            await response.write_eof()
        except ConnectionError:
            # The client gave up and closed the connection.
            log.debug("sandbox_banano_trickle_aborted")
        return response

    def _take_fault(self, action: str) -> Fault | None:
        queue = self._faults.get(action)
        if not queue:
            return None
        injected = queue[0]
        injected.remaining -= 1
        if injected.remaining == 0:
            queue.pop(0)
        return injected.fault

    async def _reply(self, action: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        try:
            if action in _CONTROL_ACTIONS and not self.enable_control:
                raise RpcError("RPC control is disabled")
            handler = self._handlers.get(action)
            if handler is not None:
                return await handler(payload)
            return self._read_reply(action, payload)
        except RpcError as error:
            return {"error": error.node_text}

    def _read_reply(self, action: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        ledger = self.ledger
        if action == "account_info":
            return replies.account_info(ledger, payload)
        if action == "account_balance":
            return replies.account_balance(ledger, payload)
        if action in ("receivable", "pending"):
            return replies.receivable(ledger, payload)
        if action == "block_info":
            return replies.block_info(ledger, payload)
        if action == "account_history":
            return replies.account_history(ledger, payload)
        if action == "block_count":
            return replies.block_count(ledger)
        raise RpcError("Unknown command")

    # Actions that change the ledger or compute work.

    async def _process(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        block_data = payload.get("block")
        if isinstance(block_data, str):
            try:
                block_data = json.loads(block_data)
            except json.JSONDecodeError as error:
                raise RpcError("Block is invalid") from error
        subtype = payload.get("subtype")
        if subtype is not None and not isinstance(subtype, str):
            raise RpcError("Invalid block subtype")
        do_work = replies.flag(payload, "do_work")

        block = _parse_block(block_data, allow_missing_work=do_work)
        if subtype is not None:
            if not self.subtype_check_first and block.hash() in self.ledger.blocks:
                raise RpcError("Old block")
            self.ledger.check_subtype(block, subtype)
        if do_work and not self._has_valid_work(block):
            block = block.with_work(await self._generate_work(work_root(block)))

        entry = self._apply(block)
        return {"hash": entry.hash}

    def _has_valid_work(self, block: StateBlock) -> bool:
        if block.work is None:
            return False
        return is_valid_work(work_root(block), block.work, self.ledger.work_threshold)

    async def _wallet_send(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        wallet_id = payload.get("wallet")
        wallet = self._wallets.get(wallet_id) if isinstance(wallet_id, str) else None
        if wallet is None or not isinstance(wallet_id, str):
            raise RpcError("Wallet not found")
        source = replies.account_param(payload, "source")
        key = wallet.get(source)
        if key is None:
            raise RpcError("Account not found in wallet")
        destination = payload.get("destination")
        try:
            decode_address(str(destination))
        except InvalidAddressError as error:
            raise RpcError("Bad destination account") from error
        amount_raw = replies.raw_param(payload, "amount", 0)
        send_id = payload.get("id")
        id_key = (wallet_id, str(send_id)) if send_id is not None else None

        # The node stores the id with the block it creates, so one lock per wallet makes a
        # repeated id wait for the first request and then return its block.
        async with self._wallet_locks.setdefault(wallet_id, asyncio.Lock()):
            if id_key is not None and id_key in self._send_ids:
                return {"block": self._send_ids[id_key]}
            account = replies.opened_account(self.ledger, source)
            if amount_raw == 0:
                raise RpcError("Bad amount number")
            if amount_raw > account.balance_raw:
                raise RpcError("Insufficient balance")
            block = build_send(
                key,
                account.frontier,
                account.representative,
                account.balance_raw,
                amount_raw,
                str(destination),
            ).signed(key)
            block = block.with_work(await self._generate_work(work_root(block)))
            entry = self._apply(block)
            if id_key is not None:
                self._send_ids[id_key] = entry.hash
        return {"block": entry.hash}

    async def _work_generate(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        root = replies.hash_param(payload)
        threshold = self.ledger.work_threshold
        difficulty = payload.get("difficulty")
        if difficulty is not None:
            try:
                threshold = int(str(difficulty), 16)
            except ValueError as error:
                raise RpcError("Bad difficulty") from error
        try:
            work = await self._generate_work(root, threshold)
            value = work_value(root, work)
        except InvalidWorkError as error:
            raise RpcError("Bad difficulty") from error
        base = self.ledger.work_threshold
        multiplier = (2**64 - base) / max(2**64 - value, 1)
        return {
            "work": work,
            "difficulty": f"{value:016x}",
            "multiplier": f"{multiplier:.7f}",
            "hash": root,
        }

    async def _generate_work(self, root: str, threshold: int | None = None) -> str:
        if self._work_generator is None:
            raise RuntimeError("the Banano sandbox node is not running")
        if threshold is None:
            threshold = self.ledger.work_threshold
        if _expected_nonces(threshold) <= _INLINE_WORK_MAX_EXPECTED_NONCES:
            # A few milliseconds of hashing: cheaper here than starting a worker process.
            return generate_work_local(root, threshold)
        return await self._work_generator.generate(root, threshold)

    def _apply(self, block: StateBlock) -> LedgerBlock:
        entry = self.ledger.apply(block, self._timestamp())
        log.debug("sandbox_banano_block_applied", block_hash=entry.hash, subtype=entry.subtype)
        if self._auto_confirm:
            self._schedule_confirmation(entry.hash)
        return entry

    def _schedule_confirmation(self, block_hash: str) -> None:
        if self.confirmation_delay <= 0:
            self.ledger.confirm(block_hash)
            return
        loop = asyncio.get_running_loop()

        def confirm_later() -> None:
            self._confirm_timers.discard(timer)
            self.ledger.confirm(block_hash)

        timer = loop.call_later(self.confirmation_delay, confirm_later)
        self._confirm_timers.add(timer)

    def _timestamp(self) -> int:
        return int(self._clock().timestamp())


def _expected_nonces(threshold: int) -> int:
    return 2**64 // max(2**64 - threshold, 1)


def _parse_block(block_data: object, *, allow_missing_work: bool) -> StateBlock:
    if not isinstance(block_data, Mapping):
        raise RpcError("Block is invalid")
    try:
        block = StateBlock.from_rpc_json(block_data)
    except InvalidBlockError as error:
        raise RpcError("Block is invalid") from error
    if block.signature is None:
        raise RpcError("Block is invalid")
    if block.work is None and not allow_missing_work:
        raise RpcError("Block is invalid")
    return block
