"""A LangChain agent whose every model call and tool call is a Chaperone record.

Runs offline: the chat model is LangChain's scripted `FakeListChatModel` (no API key), the
Chaperone side is real. Start the devnet first (`make up`), then:

    python crates/py/examples/langchain_agent.py
    chaperone verify .chaperone/py-langchain-disclosure.json --rpc-url http://127.0.0.1:8545
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool

from _common import agent_key, anchored_disclosure
from chaperone import Devnet, Recorder
from chaperone.langchain import ChaperoneCallbackHandler

QUESTIONS = [
    "What is the EUR to USD exchange rate?",
    "How much is 250 EUR in USD?",
    "Summarise the conversion in one sentence.",
]
ANSWERS = [
    "Let me look that up with the exchange_rate tool.",
    "250 EUR is 270.00 USD at 1.08.",
    "At 1.08 USD per EUR, 250 EUR buys 270 USD.",
]


@tool
def exchange_rate(currency: str) -> str:
    """The demo exchange rate of a currency to USD."""
    return {"EUR": "1.08", "GBP": "1.27"}.get(currency.upper(), "unknown")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devnet", type=Path, default=Path(".chaperone/devnet.json"))
    parser.add_argument("--data-file", type=Path, help="default: py-langchain.db beside devnet")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args()

    devnet = Devnet.read(args.devnet)
    data_file: Path = args.data_file or args.devnet.parent / "py-langchain.db"
    key = agent_key(data_file.with_suffix(".key"))
    model = FakeListChatModel(responses=ANSWERS)

    with Recorder(devnet.server_url, data_file, key) as recorder:
        handler = ChaperoneCallbackHandler(recorder)
        config: RunnableConfig = {"callbacks": [handler]}
        for question in QUESTIONS:
            model.invoke(question, config=config)
            if "rate" in question:
                exchange_rate.invoke({"currency": "EUR"}, config=config)
        recorder.sync()
        first = handler.recorded[0]
        receipt = recorder.receipt(first)
        disclosure = anchored_disclosure(
            recorder, first.leaf_hash, ("input", "output", "metadata")
        )
        out = data_file.with_name("py-langchain-disclosure.json")
        disclosure.write(out)

    summary = {
        "agent": recorder.agent,
        "records": len(handler.recorded),
        "models": [r.model for r in handler.recorded],
        "leaf_hash": first.leaf_hash,
        "index": receipt.index,
        "disclosure": str(out),
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"recorded {summary['records']} calls as agent {recorder.agent}")
        print(f"first call: {first.leaf_hash} at log index {receipt.index}")
        print(f"disclosure written to {out}; check it against the chain with")
        print(f"  chaperone verify {out} --rpc-url {devnet.rpc_url}")


if __name__ == "__main__":
    main()
