"""A scripted model for the OpenAI Agents SDK: it answers from a script instead of calling an
API (no key, no network), and traces its calls as the SDK's own models do."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from agents import Handoff, Model, ModelResponse, ModelSettings, ModelTracing, Tool, Usage
from agents.agent_output import AgentOutputSchemaBase
from agents.items import TResponseInputItem, TResponseOutputItem, TResponseStreamEvent
from agents.tracing import generation_span
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)
from openai.types.responses.response_prompt_param import ResponsePromptParam


@dataclass
class ToolCall:
    """A scripted turn that calls a tool."""

    name: str
    arguments: dict[str, Any]


class ScriptedModel(Model):
    """Replies with the script's turns in order: a `str` is a final answer, a `ToolCall` a
    function call."""

    def __init__(self, script: list[str | ToolCall], name: str = "scripted-model") -> None:
        self.script = list(script)
        self.name = name
        self.turn = 0

    def _next(self) -> TResponseOutputItem:
        step = self.script[self.turn % len(self.script)]
        self.turn += 1
        if isinstance(step, ToolCall):
            return ResponseFunctionToolCall(
                id=f"fc_{self.turn}",
                call_id=f"call_{self.turn}",
                type="function_call",
                name=step.name,
                arguments=json.dumps(step.arguments),
            )
        return ResponseOutputMessage(
            id=f"msg_{self.turn}",
            type="message",
            role="assistant",
            status="completed",
            content=[ResponseOutputText(type="output_text", text=step, annotations=[])],
        )

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None = None,
        conversation_id: str | None = None,
        prompt: ResponsePromptParam | None = None,
    ) -> ModelResponse:
        messages: list[Any] = []
        if system_instructions:
            messages.append({"role": "system", "content": system_instructions})
        messages.extend([{"role": "user", "content": input}] if isinstance(input, str) else input)
        with generation_span(
            model=self.name, model_config={}, disabled=tracing.is_disabled()
        ) as span:
            item = self._next()
            usage = Usage(requests=1, input_tokens=len(json.dumps(messages)) // 4, output_tokens=8)
            if tracing.include_data():
                span.span_data.input = messages
                span.span_data.output = [item.model_dump(exclude_none=True)]
            span.span_data.usage = {
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
            }
        return ModelResponse(output=[item], usage=usage, response_id=None)

    def stream_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None = None,
        conversation_id: str | None = None,
        prompt: ResponsePromptParam | None = None,
    ) -> AsyncIterator[TResponseStreamEvent]:
        raise NotImplementedError("the scripted model does not stream: use Runner.run")
