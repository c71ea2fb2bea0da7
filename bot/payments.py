"""Wiring of the Banano side from the configuration: node client, proof of work and sender."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass

import structlog

from bot.http_metrics import node_rpc_counter
from bot.receiving import topup_recorder
from core.banano.keys import KeyPair
from core.banano.receiver import Receiver
from core.banano.rpc import NodeClient
from core.banano.sender import LocalSigner, NodeWalletSender, Sender
from core.banano.work import LocalWorkGenerator
from core.banano.work_providers import (
    DoWorkProvider,
    FallbackWorkProvider,
    LocalWorkProvider,
    NodeWorkProvider,
    WorkProvider,
    WorkServerProvider,
)
from core.clock import Clock, utc_now
from core.config import Settings
from core.config.sections import WorkSource
from core.db import Database
from core.errors import Pay2SlayError
from core.integrations import create_http_client
from core.observability import Metrics

log = structlog.get_logger(__name__)

# Each work source gets this long before the next one is tried. A CPU search at the mainnet
# threshold can take tens of seconds on a small machine (an estimate, not a measurement).
WORK_SECONDS_PER_SOURCE = 90.0

# Index of the operator account in the operator seed.
OPERATOR_ACCOUNT_INDEX = 0


class PaymentsConfigError(Pay2SlayError):
    """The configuration lacks something the live payment path needs."""


@dataclass
class Payments:
    """The node client and the sender of the operator account; `sender` is None in dry run.

    `receiver` receives top-ups into the operator account. It is set only with the local signer
    outside dry run when a database was given. With the node_wallet signer the node's wallet
    receives by itself, if its `receive_minimum` allows the amount.
    """

    node: NodeClient | None
    sender: Sender | None
    operator_address: str | None
    receiver: Receiver | None = None


def operator_key(settings: Settings) -> KeyPair | None:
    """Return the operator account's key from the operator seed, or None without a seed."""
    seed = settings.secrets.operator_seed
    if seed is None:
        return None
    return KeyPair.from_seed(seed.get_secret_value(), OPERATOR_ACCOUNT_INDEX)


async def open_payments(
    settings: Settings,
    stack: AsyncExitStack,
    *,
    metrics: Metrics | None = None,
    db: Database | None = None,
    clock: Clock = utc_now,
) -> Payments:
    """Create the node client and, when live, the sender; `stack` closes what was opened.

    With `metrics`, node RPC requests are counted. With `db` and the local signer, a
    `Receiver` that records top-ups in `received_blocks` is built too.
    """
    integrations = settings.integrations
    banano = integrations.banano
    key = operator_key(settings)
    operator_address = None if key is None else key.address

    if integrations.node_rpc == "":
        if not integrations.dry_run:
            raise PaymentsConfigError("A live faucet needs integrations.node_rpc.")
        return Payments(node=None, sender=None, operator_address=operator_address)

    node = NodeClient(
        integrations.node_rpc,
        timeout_seconds=banano.rpc_timeout_seconds,
        on_request=None if metrics is None else node_rpc_counter(metrics),
    )
    stack.push_async_callback(node.aclose)
    if integrations.dry_run:
        return Payments(node=node, sender=None, operator_address=operator_address)

    if banano.signer == "node_wallet":
        if operator_address is None:
            # NOTE: the configuration has no key for the operator address, so the node-wallet
            # signer derives it from the seed, which then must be set even though the node signs.
            raise PaymentsConfigError(
                "The node_wallet signer needs the operator account's address, which is derived "
                "from P2S_OPERATOR_SEED; set it."
            )
        sender: Sender = NodeWalletSender(node, banano.node_wallet_id, operator_address)
        return Payments(node=node, sender=sender, operator_address=operator_address)

    if key is None:
        raise PaymentsConfigError("The local signer needs P2S_OPERATOR_SEED.")
    threshold = int(banano.work_threshold, 16)
    provider = _work_provider(settings, banano.work_sources, node, stack)
    signer = LocalSigner(node, key, banano.representative or None, provider, threshold)
    if signer.work_cache is not None:
        stack.push_async_callback(signer.work_cache.close)
    receiver = None
    if db is not None:
        # The signer's lock makes receives and sends of the account wait for each other.
        receiver = Receiver(
            node,
            key,
            signer.work_cache if signer.work_cache is not None else provider,
            topup_recorder(db, node, key.address, clock),
            threshold=threshold,
            representative=banano.representative or None,
            lock=signer.lock,
        )
    return Payments(node=node, sender=signer, operator_address=key.address, receiver=receiver)


def _work_provider(
    settings: Settings,
    sources: Sequence[WorkSource],
    node: NodeClient,
    stack: AsyncExitStack,
) -> WorkProvider | DoWorkProvider:
    """Build the chain of work sources in their configured order.

    `do_work` lets the node compute work while it processes the block, so the work never passes
    through this process and cannot be chained with the other sources: it is used only when it
    is the only source listed.
    """
    providers: list[WorkProvider] = []
    for source in sources:
        if source == "node":
            providers.append(NodeWorkProvider(node))
        elif source == "work_server":
            work_http = create_http_client()
            stack.push_async_callback(work_http.aclose)
            providers.append(
                WorkServerProvider(settings.integrations.banano.work_server_url, work_http)
            )
        elif source == "local":
            generator = LocalWorkGenerator(processes=1)
            stack.push_async_callback(generator.aclose)
            providers.append(LocalWorkProvider(generator))

    if not providers:
        return DoWorkProvider()
    if "do_work" in sources:
        log.warning("work_source_do_work_ignored", sources=list(sources))
    return FallbackWorkProvider(providers, WORK_SECONDS_PER_SOURCE)
