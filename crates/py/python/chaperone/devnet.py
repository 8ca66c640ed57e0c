"""An agent of your own on a `make up` devnet: its key, made once and kept, registered with the
devnet's server as its admin would.

An agent's records form one chain (sequence numbers with no gap), kept by one outbox: a second
program that signed with the demo agent's key from an outbox of its own would start that chain
again and be refused (409 `sequence_gap`). So each program on the devnet signs as its own agent.
"""

from __future__ import annotations

import json
import os
import secrets
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from chaperone._native import Devnet, agent_address

__all__ = ["DevnetAgent", "devnet_agent"]


@dataclass(frozen=True)
class DevnetAgent:
    """A devnet agent: its private key, its address, and the outbox file that keeps its records."""

    key: str
    address: str
    data_file: Path

    def __repr__(self) -> str:
        # No key in a repr: it ends up in logs.
        return f"DevnetAgent(address='{self.address}', data_file='{self.data_file}')"


def devnet_agent(devnet: Devnet, name: str, directory: Path | str | None = None) -> DevnetAgent:
    """The agent `name` of `devnet`: its key in `<directory>/<name>.key` (made on first use,
    mode 0600), its outbox `<directory>/<name>.db`, registered with the devnet's server (again
    changes nothing). `directory` defaults to the one holding devnet.json (`.chaperone/`), so
    nothing lands in the working directory."""
    if not name or not all(c.isalnum() or c in "-_" for c in name):
        raise ValueError("an agent's name is letters, digits, '-' and '_'")
    base = Path(directory) if directory is not None else Path(devnet.policy_file).parent
    base.mkdir(parents=True, exist_ok=True)
    key_file = base / f"{name}.key"
    if key_file.exists():
        key = key_file.read_text().strip()
    else:
        key = "0x" + secrets.token_hex(32)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(key + "\n")
    address = agent_address(key)
    request = urllib.request.Request(
        devnet.server_url + "/v1/admin/agents",
        method="POST",
        data=json.dumps({"address": address}).encode(),
        headers={
            "Authorization": f"Bearer {devnet.admin_token}",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=30):
        pass
    return DevnetAgent(key=key, address=address, data_file=base / f"{name}.db")
