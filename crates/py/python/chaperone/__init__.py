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

Framework integrations: ``chaperone.langchain`` (a callback handler) and
``chaperone.openai_agents`` (a tracing processor).
"""

from chaperone._native import (
    agent_address,
    ChainError,
    ChaperoneError,
    Closed,
    PaymentRefused,
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
    SignedAuthorization,
    Unreachable,
    UnknownRecord,
    VerifiedOnChain,
    Wallet,
)
from chaperone.devnet import DevnetAgent, devnet_agent

__all__ = [
    "agent_address",
    "ChainError",
    "ChaperoneError",
    "Closed",
    "PaymentRefused",
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
    "SignedAuthorization",
    "Unreachable",
    "UnknownRecord",
    "VerifiedOnChain",
    "Wallet",
]
