"""The evidence pack against a real devnet: records logged and anchored, `chaperone report
--bundle` fetches the period's bundle, and the independent Python implementation of RFC 9162
(tests/evidence/rfc9162.py, standard library only) verifies it; doctored copies (a changed
record, a changed proof node, reordered checkpoints) are refused by it and by
`chaperone verify --bundle` alike."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from chaperone import Recorder
from conftest import REPO, Running, disclose

sys.path.insert(0, str(REPO / "tests/evidence"))

import rfc9162  # noqa: E402  (the independent verifier)


def flip(hex_text: str) -> str:
    return hex_text[:-1] + ("1" if hex_text[-1] == "0" else "0")


def cli_verify(devnet: Running, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [devnet.binary, "verify", "--bundle", path, "--rpc-url", devnet.info.rpc_url]
        + ["--audit-log", devnet.info.audit_log, "--log-id", devnet.info.log_id],
        capture_output=True,
        text=True,
    )


def test_a_real_bundle_verifies_in_python_and_doctored_ones_are_refused_by_both(
    devnet: Running, agent_key: str, tmp_path: Path
) -> None:
    start = int(time.time()) - 5
    with Recorder(devnet.info.server_url, tmp_path / "agent.db", agent_key) as recorder:
        agent = recorder.agent
        for round_ in range(2):
            recorded = [recorder.record("gpt-4o", f"q{round_}.{i}", f"a{i}") for i in range(5)]
            recorder.sync()
            # Wait until a checkpoint covering the round is anchored (the devnet anchors every
            # 2 s), so the bundle holds two or more checkpoints.
            assert disclose(recorder, recorded[-1].leaf_hash, ("input",)).anchored
    bundle_path = tmp_path / "bundle.json"
    report = subprocess.run(
        [devnet.binary, "report", "--server", devnet.info.server_url, "--from", str(start)]
        + ["--to", str(int(time.time()) + 5), "--bundle", bundle_path]
        + ["--agent", agent, "--html", tmp_path / "report.html"],
        env={**os.environ, "CHAPERONE_ADMIN_TOKEN": devnet.info.admin_token},
        capture_output=True,
        text=True,
    )
    assert report.returncode == 0, report.stderr
    bundle: dict[str, Any] = json.loads(bundle_path.read_text())
    assert len(bundle["records"]) == 10
    assert len(bundle["checkpoints"]) >= 2, "two rounds anchored apart"

    checked = rfc9162.verify_bundle(bundle)
    assert checked["records"] == 10
    assert cli_verify(devnet, bundle_path).returncode == 0

    changed_record = copy.deepcopy(bundle)
    changed_record["records"][2]["leaf_data"] = flip(changed_record["records"][2]["leaf_data"])
    changed_node = copy.deepcopy(bundle)
    path = next(r["inclusion"]["path"] for r in changed_node["records"] if r["inclusion"]["path"])
    path[0] = flip(path[0])
    reordered = copy.deepcopy(bundle)
    reordered["checkpoints"][0], reordered["checkpoints"][1] = (
        reordered["checkpoints"][1],
        reordered["checkpoints"][0],
    )
    for what, doctored in [
        ("a changed record", changed_record),
        ("a changed proof node", changed_node),
        ("reordered checkpoints", reordered),
    ]:
        try:
            rfc9162.verify_bundle(doctored)
        except rfc9162.Invalid:
            pass
        else:
            raise AssertionError(f"the Python verifier accepted {what}")
        forged = tmp_path / "doctored.json"
        forged.write_text(json.dumps(doctored))
        refused = cli_verify(devnet, forged)
        assert refused.returncode == 2, f"chaperone verify --bundle accepted {what}: {refused.stdout}"
        assert refused.stdout.startswith("INVALID"), refused.stdout
