"""`chaperone up` for the Python suites (crates/py/tests and tests/mcp): the binary, free ports,
a devnet started in a directory and stopped after, and the admin API of its server.

Both suites put this folder on `sys.path` in their conftest.py; it needs only the standard
library and pytest (the suites' virtualenvs differ: only crates/py's has the `chaperone`
package)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


def chaperone_binary() -> Path:
    """The `chaperone` binary: CHAPERONE_BIN, or the debug build in the Cargo target folder."""
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    binary = Path(os.environ.get("CHAPERONE_BIN", target / "debug/chaperone"))
    if not binary.exists():
        pytest.fail(
            f"{binary} is missing: build it with `cargo build -p chaperone-cli` "
            "(or point CHAPERONE_BIN at a chaperone binary)"
        )
    return binary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(process: subprocess.Popen[Any], timeout: float = 15) -> None:
    """Interrupts `process` (as Ctrl-C would, so it shuts down cleanly), killed if it lingers."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def devnet_in(binary: Path, data_dir: Path) -> Iterator[None]:
    """`chaperone up --json` in `data_dir` on free ports (Anvil, the contracts, the server on
    SQLite), running until the block ends; its devnet.json is in `data_dir` once it answers."""
    process = subprocess.Popen(
        [binary, "up", "--json", "--data-dir", data_dir]
        + ["--port", str(free_port()), "--anvil-port", str(free_port())]
        + ["--facilitator-port", str(free_port())],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        try:
            first = json.loads(line)
            break
        except json.JSONDecodeError:
            continue
    else:
        pytest.fail(f"`chaperone up` ended (exit {process.wait()}) before printing its JSON")
    assert "error" not in first, f"chaperone up failed: {first}"
    try:
        yield
    finally:
        stop(process, timeout=30)


def admin_call(server_url: str, admin_token: str, method: str, path: str, body: Any = None) -> Any:
    """Calls the server's admin API with `admin_token`: the JSON answer (None when empty)."""
    request = urllib.request.Request(
        server_url + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={
            "Authorization": f"Bearer {admin_token}",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")
