"""The LangChain and OpenAI Agents integrations record the calls of scripted fake models, and
the runnable examples work against the devnet."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool

from chaperone import Disclosure, Recorder
from chaperone.langchain import ChaperoneCallbackHandler
from conftest import REPO, Running, disclose

EXAMPLES = REPO / "crates/py/examples"


def opened(recorder: Recorder, leaf_hash: str) -> dict[str, str]:
    """The content a full disclosure of a record opens, by commitment kind."""
    disclosure = json.loads(disclose(recorder, leaf_hash, ("input", "output", "metadata")).to_json())
    return {
        item["kind"]: bytes.fromhex(item["content"].removeprefix("0x")).decode()
        for item in disclosure["disclosed"]
    }


@tool
def double(number: int) -> int:
    """Doubles a number."""
    return 2 * number


def test_langchain_handler_records_model_and_tool_calls(
    devnet: Running, agent_key: str, tmp_path: Path
) -> None:
    model = FakeListChatModel(responses=["four", "eight"])
    with Recorder(devnet.info.server_url, tmp_path / "agent.db", agent_key) as recorder:
        handler = ChaperoneCallbackHandler(recorder)
        config: RunnableConfig = {"callbacks": [handler]}
        assert model.invoke("What is 2+2?", config=config).content == "four"
        assert double.invoke({"number": 4}, config=config) == 8
        assert model.invoke("And doubled?", config=config).content == "eight"
        recorder.sync()
        models = [r.model for r in handler.recorded]
        assert models == ["FakeListChatModel", "tool:double", "FakeListChatModel"]
        chat = opened(recorder, handler.recorded[0].leaf_hash)
        assert "What is 2+2?" in chat["input"]
        assert "four" in chat["output"]
        metadata = json.loads(chat["metadata"])
        assert metadata["gen_ai.operation.name"] == "chat"
        assert metadata["gen_ai.provider.name"] == "fakelistchatmodel"  # LangChain's ls_provider
        assert "langchain.run_id" in metadata
        tool_call = opened(recorder, handler.recorded[1].leaf_hash)
        assert json.loads(tool_call["input"]) == {"number": 4}
        assert tool_call["output"] == "8"
        assert json.loads(tool_call["metadata"])["gen_ai.tool.name"] == "double"


def test_openai_agents_processor_records_generations_and_tools(
    devnet: Running, agent_key: str, tmp_path: Path
) -> None:
    from agents import Agent, Runner, function_tool, set_trace_processors
    from scripted_model import ScriptedModel, ToolCall

    from chaperone.openai_agents import ChaperoneTracingProcessor

    @function_tool
    def lookup(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    model = ScriptedModel([ToolCall("lookup", {"city": "Lisbon"}), "It is sunny in Lisbon."])
    agent = Agent(name="weather", instructions="Use lookup.", model=model, tools=[lookup])
    with Recorder(devnet.info.server_url, tmp_path / "agent.db", agent_key) as recorder:
        processor = ChaperoneTracingProcessor(recorder)
        set_trace_processors([processor])
        result = Runner.run_sync(agent, "Weather in Lisbon?")
        assert result.final_output == "It is sunny in Lisbon."
        processor.force_flush()
        recorder.sync()
        models = [r.model for r in processor.recorded]
        assert models == ["scripted-model", "tool:lookup", "scripted-model"]
        first = opened(recorder, processor.recorded[0].leaf_hash)
        assert "Weather in Lisbon?" in first["input"]
        assert "lookup" in first["output"]
        metadata = json.loads(first["metadata"])
        assert metadata["gen_ai.operation.name"] == "chat"
        assert metadata["gen_ai.request.model"] == "scripted-model"
        assert metadata["gen_ai.usage.output_tokens"] == 8
        tool_call = opened(recorder, processor.recorded[1].leaf_hash)
        assert tool_call["output"] == "sunny in Lisbon"


def test_the_examples_run_against_the_devnet_and_verify(devnet: Running, tmp_path: Path) -> None:
    for example, records in (("langchain_agent.py", 4), ("openai_agents_agent.py", 3)):
        run = subprocess.run(
            [sys.executable, EXAMPLES / example, "--devnet", devnet.dir / "devnet.json"]
            + ["--data-file", tmp_path / example.replace(".py", ".db"), "--json"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0, run.stderr
        summary = json.loads(run.stdout.splitlines()[-1])
        assert summary["records"] == records
        disclosure = Disclosure.read(summary["disclosure"])
        assert disclosure.leaf_hash == summary["leaf_hash"]
        verify = subprocess.run(
            [devnet.binary, "verify", summary["disclosure"], "--rpc-url", devnet.info.rpc_url,
             "--server", devnet.info.server_url],
            capture_output=True,
            text=True,
        )
        assert verify.returncode == 0, verify.stderr + verify.stdout
