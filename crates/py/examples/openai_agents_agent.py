"""An OpenAI Agents SDK agent whose every model call and tool call is a Chaperone record.

Runs offline: the model is a scripted one (scripted_model.py: no API key, no network), the
Chaperone side is real. Start the devnet first (`make up`), then:

    python crates/py/examples/openai_agents_agent.py
    chaperone verify .chaperone/py-openai-agents-disclosure.json --rpc-url http://127.0.0.1:8545
"""

from __future__ import annotations

import argparse
from pathlib import Path

from agents import Agent, Runner, function_tool, set_trace_processors

from _common import finish
from chaperone import Devnet, Recorder, devnet_agent
from chaperone.openai_agents import ChaperoneTracingProcessor
from scripted_model import ScriptedModel, ToolCall


@function_tool
def exchange_rate(currency: str) -> str:
    """The demo exchange rate of a currency to USD."""
    return {"EUR": "1.08", "GBP": "1.27"}.get(currency.upper(), "unknown")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devnet", type=Path, default=Path(".chaperone/devnet.json"))
    parser.add_argument("--data-file", type=Path, help="default: py-openai-agents.db beside devnet")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args()

    devnet = Devnet.read(args.devnet)
    data_file: Path = args.data_file or args.devnet.parent / "py-openai-agents.db"
    # Its own agent (key beside the data file): the demo agent's records are `make agent`'s.
    key = devnet_agent(devnet, data_file.stem, data_file.parent).key
    model = ScriptedModel(
        [ToolCall("exchange_rate", {"currency": "EUR"}), "250 EUR is 270.00 USD at 1.08."]
    )
    agent = Agent(
        name="treasurer",
        instructions="Convert amounts with the exchange_rate tool.",
        model=model,
        tools=[exchange_rate],
    )

    with Recorder(devnet.server_url, data_file, key) as recorder:
        processor = ChaperoneTracingProcessor(recorder)
        # Replaces the SDK's default exporter (which would send traces to OpenAI).
        set_trace_processors([processor])
        result = Runner.run_sync(agent, "How much is 250 EUR in USD?")
        out = data_file.with_name("py-openai-agents-disclosure.json")
        extra = {"answer": result.final_output}
        finish(recorder, list(processor.recorded), out, devnet.rpc_url, args.json, extra)


if __name__ == "__main__":
    main()
