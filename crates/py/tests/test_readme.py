"""The README's Python example, run as a newcomer would right after `make agent`: in a directory
whose `.chaperone/` is the devnet's, after the demo agent has logged from its own outbox."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from chaperone import Recorder
from conftest import REPO, Running


def readme_example() -> str:
    text = (REPO / "crates/py/README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    assert blocks, "crates/py/README.md has no Python example"
    return str(blocks[0])


def test_the_readme_example_runs_after_the_demo_agent_and_leaves_the_directory_clean(
    devnet: Running, tmp_path: Path
) -> None:
    # `make agent` has logged as the demo agent from its outbox.
    with Recorder(devnet.info.server_url, devnet.demo_outbox, devnet.info.agent_key) as r:
        r.record("demo", "a call of the demo agent", "its answer")
        r.sync()
    project = tmp_path / "project"
    project.mkdir()
    (project / ".chaperone").symlink_to(devnet.dir)
    script = project / "example.py"
    script.write_text(readme_example())
    for run in (1, 2):  # a second run goes on with the same agent and outbox
        done = subprocess.run(
            [sys.executable, script.name], cwd=project, capture_output=True, text=True
        )
        assert done.returncode == 0, f"run {run}: {done.stderr}"
        leaf_hash, index = done.stdout.split()
        assert leaf_hash.startswith("0x") and int(index) >= 0
    assert sorted(p.name for p in project.iterdir()) == [".chaperone", "example.py"], (
        "the example wrote files into the working directory"
    )
    assert (devnet.dir / "quickstart.key").stat().st_mode & 0o077 == 0, "the key is private"
