"""The recorder from Python against a real server: delivery, a crash mid-run, disclosure
verified on chain, crypto-shredding, errors and the asyncio twins."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import chaperone
from chaperone import Recorder
from conftest import Running, disclose

KIB = b"x" * 1024


def test_a_thousand_records_are_delivered_once_each(
    devnet: Running, agent_key: str, tmp_path: Path
) -> None:
    with Recorder(devnet.info.server_url, tmp_path / "agent.db", agent_key) as recorder:
        recorded = [
            recorder.record("gpt-4o", KIB, f"answer {i}".encode() + KIB) for i in range(1_000)
        ]
        assert [r.sequence for r in recorded] == list(range(1_000))
        assert len({r.leaf_hash for r in recorded}) == 1_000
        recorder.sync()
        assert recorder.progress.delivered == 1_000
        first, last = recorder.receipt(recorded[0]), recorder.receipt(recorded[-1])
        assert last.index - first.index == 999  # one writer: its batches are adjacent
        agent = recorder.agent
    assert devnet.logged_sequences(agent) == list(range(1_000))


# The child records forever after a flush; it is killed with SIGKILL mid-stream.
CHILD = """
import sys
from chaperone import Recorder
recorder = Recorder(sys.argv[1], sys.argv[2], sys.argv[3], linger=0.001, max_batch=50)
for i in range(300):
    recorder.record("gpt-4o", b"in %d" % i, b"out %d" % i)
recorder.flush()
print("flushed", flush=True)
i = 300
while True:
    recorder.record("gpt-4o", b"in %d" % i, b"out %d" % i)
    i += 1
"""


def test_a_killed_process_loses_no_persisted_record_and_doubles_none(
    devnet: Running, agent_key: str, tmp_path: Path
) -> None:
    data_file = tmp_path / "agent.db"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, devnet.info.server_url, str(data_file), agent_key],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "flushed"
    time.sleep(0.3)  # mid-stream: records queued, batches persisted, deliveries in flight
    os.kill(child.pid, signal.SIGKILL)
    child.wait()

    with Recorder(devnet.info.server_url, data_file, agent_key) as recorder:
        persisted = recorder.records()
        assert len(persisted) >= 300, "every flushed record survives the kill"
        assert [sequence for sequence, _, _ in persisted] == list(range(len(persisted)))
        recorder.sync()
        # The chain goes on where the outbox ended.
        assert recorder.record("gpt-4o", b"after", b"restart").sequence == len(persisted)
        recorder.sync()
        agent = recorder.agent
    assert devnet.logged_sequences(agent) == list(range(len(persisted) + 1))


def test_a_disclosure_verifies_on_chain_and_with_the_cli(
    devnet: Running, agent_key: str, tmp_path: Path
) -> None:
    with Recorder(devnet.info.server_url, tmp_path / "agent.db", agent_key) as recorder:
        recorded = recorder.record(
            "gpt-4o", "What is 2+2?", "4", {"gen_ai.usage.input_tokens": 7}
        )
        receipt = recorder.receipt(recorded)
        disclosure = disclose(recorder, recorded.leaf_hash, ("input", "output"))
        assert disclosure.anchored, "the checkpoint was never anchored"
        verified = disclosure.verify_on_chain(
            devnet.info.rpc_url, devnet.info.audit_log, devnet.info.log_id
        )
        assert verified.leaf_hash == recorded.leaf_hash == disclosure.leaf_hash
        assert verified.index == receipt.index
        assert verified.agent == recorder.agent
        assert verified.disclosed == ["input", "output"]
        assert verified.audit_log == devnet.info.audit_log

        path = tmp_path / "disclosure.json"
        disclosure.write(path)
        ok = subprocess.run(
            [devnet.binary, "verify", path, "--rpc-url", devnet.info.rpc_url,
             "--server", devnet.info.server_url],
            capture_output=True,
            text=True,
        )
        assert ok.returncode == 0, ok.stderr

        # A doctored disclosure fails, in Python and in the CLI.
        doctored = json.loads(disclosure.to_json())
        doctored["disclosed"][0]["content"] = "0x" + b"What is 2+3?".hex()
        forged = chaperone.Disclosure.from_json(json.dumps(doctored))
        with pytest.raises(chaperone.ChaperoneError):
            forged.verify_on_chain(
            devnet.info.rpc_url, devnet.info.audit_log, devnet.info.log_id
        )
        forged.write(path)
        bad = subprocess.run(
            [devnet.binary, "verify", path, "--rpc-url", devnet.info.rpc_url,
             "--server", devnet.info.server_url],
            capture_output=True,
        )
        assert bad.returncode == 2


def test_forget_leaves_the_content_in_no_file(
    devnet: Running, agent_key: str, tmp_path: Path
) -> None:
    secret = os.urandom(16).hex().encode()
    with Recorder(devnet.info.server_url, tmp_path / "agent.db", agent_key) as recorder:
        recorded = recorder.record("gpt-4o", b"prompt " + secret, b"answer " + secret)
        recorder.sync()
        files = list(tmp_path.iterdir())
        assert any(secret in f.read_bytes() for f in files), "content is kept until forgotten"
        recorder.forget(recorded.leaf_hash)
        with pytest.raises(chaperone.Forgotten) as forgotten:
            recorder.disclose(recorded.leaf_hash)
        assert forgotten.value.leaf_hash == recorded.leaf_hash
        with pytest.raises(chaperone.UnknownRecord):
            recorder.forget("0x" + "00" * 32)
    for path in tmp_path.iterdir():
        try:
            content = path.read_bytes()
        except FileNotFoundError:
            # SQLite removes its -wal file as the closing connection checkpoints it, which can
            # happen between the listing and the read: a file that is gone holds nothing.
            continue
        assert secret not in content, f"{path.name} still holds the content"


def test_bad_input_raises_a_precise_error(
    devnet: Running, agent_key: str, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="agent_key must be 32 bytes") as bad_key:
        Recorder(devnet.info.server_url, tmp_path / "a.db", "0x1234")
    assert "1234" not in str(bad_key.value), "the error never repeats the key"
    recorder = Recorder(devnet.info.server_url, tmp_path / "agent.db", agent_key)
    with pytest.raises(TypeError, match="input must be str or bytes"):
        recorder.record("gpt-4o", 42, b"out")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a commitment"):
        recorder.disclose("0x" + "00" * 32, ["prompt"])  # type: ignore[list-item]
    recorder.close()
    recorder.close()  # twice is harmless
    with pytest.raises(chaperone.Closed):
        recorder.record("gpt-4o", b"in", b"out")


def test_an_unreachable_server_holds_records_in_the_outbox(
    agent_key: str, tmp_path: Path
) -> None:
    with Recorder("http://127.0.0.1:9", tmp_path / "agent.db", agent_key) as recorder:
        recorder.record("gpt-4o", b"in", b"out")
        recorder.flush()
        assert recorder.progress.persisted == 1
        assert recorder.progress.delivered == 0
        with pytest.raises(chaperone.Unreachable) as unreachable:
            recorder.disclose(recorder.records()[0][1])
        assert unreachable.value.url.startswith("http://127.0.0.1:9")


def test_the_async_twins(devnet: Running, agent_key: str, tmp_path: Path) -> None:
    async def run() -> tuple[list[int], int]:
        recorder = await Recorder.open_async(
            devnet.info.server_url, tmp_path / "agent.db", agent_key
        )
        async with recorder:
            recorded = await asyncio.gather(
                *(recorder.record_async("gpt-4o", f"q{i}", f"a{i}") for i in range(20))
            )
            await recorder.sync_async()
            receipt = await recorder.receipt_async(recorded[-1])
            return sorted(r.sequence for r in recorded), receipt.index

    sequences, index = asyncio.run(run())
    assert sequences == list(range(20))
    assert index >= 19
