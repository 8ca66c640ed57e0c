"""A tracing processor for the OpenAI Agents SDK that records every model call and tool call
as a Chaperone record (needs ``openai-agents``: ``pip install './crates/py[openai-agents]'``).

    from agents import add_trace_processor
    from chaperone.openai_agents import ChaperoneTracingProcessor

    add_trace_processor(ChaperoneTracingProcessor(recorder))

Generation and response spans become model-call records (input: the messages; output: the
model's items; metadata: the OpenTelemetry ``gen_ai.*`` attributes and the trace and span
ids), function spans become tool-call records. The content never leaves the agent.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from agents.tracing import (
    FunctionSpanData,
    GenerationSpanData,
    ResponseSpanData,
    Span,
    Trace,
    TracingProcessor,
)

from chaperone._json import dumps
from chaperone._native import Closed, Recorded, Recorder

__all__ = ["ChaperoneTracingProcessor"]


def _usage(usage: dict[str, Any] | None) -> dict[str, int]:
    if not usage:
        return {}
    attributes = {}
    for ours, theirs in (
        ("gen_ai.usage.input_tokens", ("input_tokens", "prompt_tokens")),
        ("gen_ai.usage.output_tokens", ("output_tokens", "completion_tokens")),
    ):
        for key in theirs:
            if isinstance(usage.get(key), int):
                attributes[ours] = usage[key]
                break
    return attributes


class ChaperoneTracingProcessor(TracingProcessor):
    """Records each finished generation, response and function span.

    ``recorded`` holds the latest ``keep`` records (for receipts or disclosures).
    ``force_flush`` and ``shutdown`` persist every record to the outbox.
    """

    def __init__(self, recorder: Recorder, *, record_tools: bool = True, keep: int = 1_000):
        self.recorder = recorder
        self.record_tools = record_tools
        self.recorded: deque[Recorded] = deque(maxlen=keep)

    def on_trace_start(self, trace: Trace) -> None:
        pass

    def on_trace_end(self, trace: Trace) -> None:
        pass

    def on_span_start(self, span: Span[Any]) -> None:
        pass

    def on_span_end(self, span: Span[Any]) -> None:
        data = span.span_data
        metadata: dict[str, Any] = {
            "openai_agents.trace_id": span.trace_id,
            "openai_agents.span_id": span.span_id,
        }
        if span.parent_id:
            metadata["openai_agents.parent_id"] = span.parent_id
        if span.error:
            metadata["error.type"] = span.error.get("message", "error")
        if isinstance(data, GenerationSpanData):
            model = data.model or "unknown"
            metadata.update(
                {"gen_ai.operation.name": "chat", "gen_ai.request.model": model},
                **_usage(data.usage),
            )
            if data.model_config:
                metadata["gen_ai.request.config"] = dict(data.model_config)
            self._record(model, dumps(data.input), dumps(data.output), metadata)
        elif isinstance(data, ResponseSpanData):
            response = data.response
            model = str(response.model) if response is not None else "unknown"
            metadata.update(
                {"gen_ai.operation.name": "chat", "gen_ai.request.model": model},
                **_usage(data.usage),
            )
            if response is not None:
                metadata["gen_ai.response.id"] = response.id
            output = dumps(response.output) if response is not None else "null"
            self._record(model, dumps(data.input), output, metadata)
        elif isinstance(data, FunctionSpanData) and self.record_tools:
            metadata.update(
                {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": data.name}
            )
            output = data.output if isinstance(data.output, str) else dumps(data.output)
            self._record(f"tool:{data.name}", data.input or "", output, metadata)

    def _record(self, model: str, input: str, output: str, metadata: dict[str, Any]) -> None:
        self.recorded.append(self.recorder.record(model, input, output, metadata))

    def shutdown(self) -> None:
        self.force_flush()

    def force_flush(self) -> None:
        try:
            self.recorder.flush()
        except Closed:
            pass  # closing flushed it (the SDK calls shutdown again at exit)
