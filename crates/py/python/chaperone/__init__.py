"""Chaperone for Python agents: a tamper-evident audit trail of model calls, and a wallet the
agent cannot drain.

The classes are the Rust SDK's, through PyO3 (one implementation of the record format, the
commitments, the batching and the outbox). Blocking methods release the GIL; each has an
``*_async`` twin for asyncio code.

    from chaperone import Devnet, Recorder, devnet_agent

    devnet = Devnet.read()  # what `make up` wrote to .chaperone/devnet.json
    agent = devnet_agent(devnet, "quickstart")  # its own key and outbox, in .chaperone/
    with Recorder(devnet.server_url, agent.data_file, agent.key) as recorder:
        recorded = recorder.record("gpt-4o", "What is 2+2?", "4")
        print(recorder.receipt(recorded).index)

Paying x402 APIs: ``X402Client`` (the Rust SDK's x402 client), and for httpx
``chaperone.X402Transport`` / ``chaperone.AsyncX402Transport`` (in ``chaperone.x402``, which
needs ``httpx``: ``pip install "chaperone[x402]"``).

Framework integrations: ``chaperone.langchain`` (a callback handler) and
``chaperone.openai_agents`` (a tracing processor).
"""

from typing import TYPE_CHECKING, Any

from chaperone._native import (
    agent_address,
    ChainError,
    ChaperoneError,
    Closed,
    PaymentRefused,
    PaymentUnanswered,
    PendingAuthorization,
    ContentFileError,
    CoreError,
    Denied,
    Devnet,
    Disclosure,
    Executed,
    Expired,
    Forgotten,
    Invalid,
    LocalStoreError,
    MigrationError,
    Pending,
    PendingPayment,
    Progress,
    Reason,
    Recorded,
    RecordReceipt,
    Recorder,
    Refused,
    Rejected,
    SettledPayment,
    Settlement,
    SignedAuthorization,
    Unreachable,
    UnknownRecord,
    VerifiedOnChain,
    Wallet,
    X402Client,
    X402Payment,
    X402Response,
)
from chaperone.devnet import DevnetAgent, devnet_agent

if TYPE_CHECKING:
    # Re-exported for type checkers; at run time `__getattr__` imports them when first used
    # (not in `__all__`, so `from chaperone import *` works without httpx).
    from chaperone.x402 import AsyncX402Transport as AsyncX402Transport
    from chaperone.x402 import X402Transport as X402Transport


def __getattr__(name: str) -> Any:
    # The httpx transports import httpx: only when asked for.
    if name in ("X402Transport", "AsyncX402Transport"):
        from chaperone import x402

        return getattr(x402, name)
    raise AttributeError(f"module 'chaperone' has no attribute {name!r}")


__all__ = [
    "agent_address",
    "ChainError",
    "ChaperoneError",
    "Closed",
    "PaymentRefused",
    "PaymentUnanswered",
    "PendingAuthorization",
    "ContentFileError",
    "CoreError",
    "Denied",
    "Devnet",
    "DevnetAgent",
    "devnet_agent",
    "Disclosure",
    "Executed",
    "Expired",
    "Forgotten",
    "Invalid",
    "LocalStoreError",
    "MigrationError",
    "Pending",
    "PendingPayment",
    "Progress",
    "Reason",
    "Recorded",
    "RecordReceipt",
    "Recorder",
    "Refused",
    "Rejected",
    "SettledPayment",
    "Settlement",
    "SignedAuthorization",
    "Unreachable",
    "UnknownRecord",
    "VerifiedOnChain",
    "Wallet",
    "X402Client",
    "X402Payment",
    "X402Response",
]
