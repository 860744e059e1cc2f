"""A copy killed with SIGKILL part-way, then run again, ends with identical data."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import hubkv

from .conftest import assert_same_data, cli_env, populate, snapshot

KEYS = 20_000


def test_killed_copy_then_rerun_finishes_without_loss_or_duplicates(tmp_path: Path) -> None:
    source_path, target_path = tmp_path / "source.sqlite3", tmp_path / "target.sqlite3"
    source = hubkv.KV("fs-lite", path=str(source_path))
    populate(source, KEYS)
    keys = source.keys()
    command = [
        sys.executable,
        "-m",
        "hubkv",
        "copy",
        "--from",
        f"fs-lite:path={source_path}",
        "--to",
        f"fs-lite:path={target_path}",
        "--batch-size",
        "50",
    ]
    target = hubkv.KV("fs-lite", path=str(target_path))
    # fs-lite lists keys in order, so the copy reaches keys[1000] after 20 of 400 batches.
    process = subprocess.Popen(
        [*command, "--quiet"], cwd=tmp_path, env=cli_env(), stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while not target.has(keys[1000]):
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "the copy never got going"
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL

    partial = snapshot(target)
    assert 1000 < len(partial) < KEYS, "the copy was not interrupted part-way"
    expected = snapshot(source)
    assert_same_data(partial, {key: expected[key] for key in partial})

    rerun = subprocess.run(
        [*command, "--skip-existing", "--json"],
        cwd=tmp_path,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    assert summary["skipped"] == len(partial)
    assert summary["written"] == KEYS - len(partial)
    assert summary["failed"] == 0
    assert_same_data(snapshot(target), snapshot(source))
