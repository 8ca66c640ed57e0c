"""A LangChain agent whose every model call and tool call is a Chaperone record.

Runs offline: the chat model is LangChain's scripted `FakeListChatModel` (no API key), the
Chaperone side is real. Start the devnet first (`make up`), then:

    python crates/py/examples/langchain_agent.py
    chaperone verify .chaperone/py-langchain-disclosure.json --rpc-url http://127.0.0.1:8545
"""

from __future__ import annotations

import argparse
from pathlib import Path

from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool

from _common import finish
from chaperone import Devnet, Recorder, devnet_agent
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
    # Its own agent (key beside the data file): the demo agent's records are `make agent`'s.
    key = devnet_agent(devnet, data_file.stem, data_file.parent).key
    model = FakeListChatModel(responses=ANSWERS)

    with Recorder(devnet.server_url, data_file, key) as recorder:
        handler = ChaperoneCallbackHandler(recorder)
        config: RunnableConfig = {"callbacks": [handler]}
        for question in QUESTIONS:
            model.invoke(question, config=config)
            if "rate" in question:
                exchange_rate.invoke({"currency": "EUR"}, config=config)
        out = data_file.with_name("py-langchain-disclosure.json")
        finish(recorder, list(handler.recorded), out, devnet.rpc_url, args.json, {})


if __name__ == "__main__":
    main()
