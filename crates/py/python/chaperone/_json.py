"""The canonical JSON the integrations commit to: sorted keys, no spaces, and anything JSON
cannot hold (pydantic models, UUIDs, datetimes) by its model dump or its ``str``."""

from __future__ import annotations

import json
from typing import Any


def _plain(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json", exclude_none=True)
    return str(value)


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_plain)
