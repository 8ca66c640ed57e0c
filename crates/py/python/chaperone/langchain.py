"""A LangChain callback handler that records every model call and tool call as a Chaperone
record (needs ``langchain-core``: ``pip install './crates/py[langchain]'``).

    from chaperone.langchain import ChaperoneCallbackHandler

    handler = ChaperoneCallbackHandler(recorder)
    chat_model.invoke("What is 2+2?", config={"callbacks": [handler]})

Each record commits to the call's input (the messages or prompts, as JSON), its output (the
generations) and metadata with the OpenTelemetry ``gen_ai.*`` attributes (operation, model,
token usage) and the LangChain run ids. The content never leaves the agent: only salted
commitments reach the server.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage, messages_to_dict
from langchain_core.outputs import ChatGeneration, LLMResult

from chaperone._json import dumps
from chaperone._native import Recorded, Recorder

__all__ = ["ChaperoneCallbackHandler"]


@dataclass
class _Started:
    model: str
    input: str
    metadata: dict[str, Any] = field(default_factory=dict)


def _model_name(serialized: dict[str, Any] | None, kwargs: dict[str, Any]) -> str:
    # LangChain's LangSmith metadata names the model (`ls_model_name`) for its integrations;
    # otherwise the invocation parameters or the constructor arguments may, else the class.
    sources = (
        {"model": (kwargs.get("metadata") or {}).get("ls_model_name")},
        kwargs.get("invocation_params") or {},
        (serialized or {}).get("kwargs") or {},
    )
    for source in sources:
        for key in ("model", "model_name", "model_id"):
            if isinstance(source.get(key), str) and source[key]:
                return str(source[key])
    names = (serialized or {}).get("id") or []
    return str(names[-1]) if names else "unknown"


def _provider(kwargs: dict[str, Any]) -> str | None:
    provider = (kwargs.get("metadata") or {}).get("ls_provider")
    return str(provider) if provider else None


def _usage(response: LLMResult) -> dict[str, int]:
    usage: dict[str, int] = {}
    token_usage = (response.llm_output or {}).get("token_usage") or {}
    if token_usage:
        usage["gen_ai.usage.input_tokens"] = int(token_usage.get("prompt_tokens", 0))
        usage["gen_ai.usage.output_tokens"] = int(token_usage.get("completion_tokens", 0))
        return usage
    for generations in response.generations:
        for generation in generations:
            message = getattr(generation, "message", None)
            metadata = getattr(message, "usage_metadata", None) or {}
            if metadata:
                usage["gen_ai.usage.input_tokens"] = usage.get(
                    "gen_ai.usage.input_tokens", 0
                ) + int(metadata.get("input_tokens", 0))
                usage["gen_ai.usage.output_tokens"] = usage.get(
                    "gen_ai.usage.output_tokens", 0
                ) + int(metadata.get("output_tokens", 0))
    return usage


def _generations(response: LLMResult) -> list[list[Any]]:
    return [
        [
            messages_to_dict([g.message])[0] if isinstance(g, ChatGeneration) else g.text
            for g in generations
        ]
        for generations in response.generations
    ]


class ChaperoneCallbackHandler(BaseCallbackHandler):
    """Records each LLM, chat model and tool run of the runnables it is passed to.

    ``recorded`` holds the latest ``keep`` records (for receipts or disclosures); a failed
    call is recorded too, with the error as its output, so the trail shows what was tried.
    """

    raise_error = True  # a record that cannot be made must not pass silently

    def __init__(self, recorder: Recorder, *, record_tools: bool = True, keep: int = 1_000):
        self.recorder = recorder
        self.record_tools = record_tools
        self.recorded: deque[Recorded] = deque(maxlen=keep)
        self._runs: dict[UUID, _Started] = {}
        self._lock = threading.Lock()

    def _start(self, run_id: UUID, started: _Started) -> None:
        with self._lock:
            self._runs[run_id] = started

    def _finish(self, run_id: UUID, output: str, extra: dict[str, Any]) -> Recorded | None:
        with self._lock:
            started = self._runs.pop(run_id, None)
        if started is None:
            return None
        metadata = {**started.metadata, **extra}
        recorded = self.recorder.record(started.model, started.input, output, metadata)
        self.recorded.append(recorded)
        return recorded

    def _model_metadata(
        self,
        operation: str,
        model: str,
        kwargs: dict[str, Any],
        run_id: UUID,
        parent_run_id: UUID | None,
    ) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "gen_ai.request.model": model,
            "langchain.run_id": str(run_id),
        }
        provider = _provider(kwargs)
        if provider:
            metadata["gen_ai.provider.name"] = provider
        if parent_run_id is not None:
            metadata["langchain.parent_run_id"] = str(parent_run_id)
        return metadata

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        model = _model_name(serialized, kwargs)
        prompt = dumps([messages_to_dict(batch) for batch in messages])
        metadata = self._model_metadata("chat", model, kwargs, run_id, parent_run_id)
        self._start(run_id, _Started(model, prompt, metadata))

    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        model = _model_name(serialized, kwargs)
        metadata = self._model_metadata(
            "text_completion", model, kwargs, run_id, parent_run_id
        )
        self._start(run_id, _Started(model, dumps(prompts), metadata))

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        self._finish(run_id, dumps({"generations": _generations(response)}), _usage(response))

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._finish(run_id, dumps({"error": repr(error)}), {"error.type": type(error).__name__})

    def on_tool_start(
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not self.record_tools:
            return
        name = str((serialized or {}).get("name") or "tool")
        metadata: dict[str, Any] = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": name,
            "langchain.run_id": str(run_id),
        }
        if parent_run_id is not None:
            metadata["langchain.parent_run_id"] = str(parent_run_id)
        tool_input = dumps(inputs) if inputs is not None else input_str
        self._start(run_id, _Started(f"tool:{name}", tool_input, metadata))

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        text = output if isinstance(output, str) else dumps(getattr(output, "content", output))
        self._finish(run_id, text, {})

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._finish(run_id, dumps({"error": repr(error)}), {"error.type": type(error).__name__})
