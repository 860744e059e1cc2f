"""hubkv export / import / copy, run as real subprocesses."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
from collections.abc import Callable
from pathlib import Path

import hubkv

from .conftest import cli_env, populate

Run = Callable[..., subprocess.CompletedProcess[str]]


def test_export_to_stdout_then_import_from_stdin(hubkv_cli: Run, tmp_path: Path) -> None:
    source = hubkv.KV("fs-lite", path=str(tmp_path / "a.sqlite3"))
    source.set_many({"users:1": {"name": "Ada"}, "users:2": {"name": "Bob"}, "other": 1})
    source.set("users:3", "temp", ttl=300)
    exported = hubkv_cli("--driver", "fs-lite", "--option", "path=a.sqlite3", "export", "users:")
    assert exported.returncode == 0, exported.stderr
    records = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [r["key"] for r in records] == ["users:1", "users:2", "users:3"]
    assert exported.stderr == "hubkv: exported 3 keys\n"

    imported = hubkv_cli(
        "import", "-", "--to", "fs-lite:path=b.sqlite3", "--json", stdin=exported.stdout
    )
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout)["written"] == 3
    target = hubkv.KV("fs-lite", path=str(tmp_path / "b.sqlite3"))
    assert target.get("users:1") == {"name": "Ada"}
    assert 290 < (target.ttl("users:3") or 0) <= 300


def test_export_json_summary_goes_to_stderr_when_stdout_has_the_data(
    hubkv_cli: Run, tmp_path: Path
) -> None:
    hubkv.KV("fs-lite", path=str(tmp_path / "a.sqlite3")).set("k", 1)
    out = hubkv_cli("export", "--from", "fs-lite:path=a.sqlite3", "--json")
    assert json.loads(out.stdout) == {"key": "k", "value": 1, "ttl": None}
    assert json.loads(out.stderr)["written"] == 1
    to_file = hubkv_cli("export", "--from", "fs-lite:path=a.sqlite3", "-o", "x.jsonl", "--quiet")
    assert (to_file.returncode, to_file.stdout, to_file.stderr) == (0, "", "")
    assert (tmp_path / "x.jsonl").read_text() == out.stdout


def test_a_bad_import_line_exits_2_with_one_line_and_writes_nothing(
    hubkv_cli: Run, tmp_path: Path
) -> None:
    lines = ['{"key": "a", "value": 1}', '{"key": "b", "value": 2}', '{"key": "c", "value": }']
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    out = hubkv_cli("--driver", "fs-lite", "--option", "path=t.sqlite3", "import", "in.jsonl")
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "line 3" in out.stderr
    assert out.stderr.startswith("hubkv: error: in.jsonl: 1 bad line, nothing was written")
    assert hubkv.KV("fs-lite", path=str(tmp_path / "t.sqlite3")).keys() == []


def test_copy_dry_run_then_copy_with_prefix_rewrite(hubkv_cli: Run, tmp_path: Path) -> None:
    populate(hubkv.KV("fs-lite", path=str(tmp_path / "a.sqlite3")), 25, prefix="staging:")
    spec_a, spec_b = "fs-lite:path=a.sqlite3", "fs-lite:path=b.sqlite3"
    dry = hubkv_cli("copy", "--from", spec_a, "--to", spec_b, "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout) | {"seconds": 0} == {
        "operation": "copy",
        "written": 25,
        "skipped": 0,
        "expired": 0,
        "failed": 0,
        "dry_run": True,
        "seconds": 0,
        "errors": [],
    }
    target = hubkv.KV("fs-lite", path=str(tmp_path / "b.sqlite3"))
    assert target.keys() == []
    real = hubkv_cli("copy", "--from", spec_a, "--to", spec_b, "--prefix-rewrite", "staging:=prod:")
    assert real.returncode == 0, real.stderr
    assert real.stderr.startswith("hubkv: copied 25 keys")
    assert len(target.keys("prod:")) == 25 and target.keys("staging:") == []


def test_keys_the_target_refuses_exit_3_after_copying_the_rest(
    hubkv_cli: Run, tmp_path: Path
) -> None:
    source = hubkv.KV("fs-lite", path=str(tmp_path / "a.sqlite3"))
    source.set_many({"small": 1, "big": "x" * 100})
    out = hubkv_cli(
        "copy",
        "--from",
        "fs-lite:path=a.sqlite3",
        "--to",
        "fs-lite:path=b.sqlite3,max_value_bytes=50",
    )
    assert out.returncode == 3
    assert "copied 1 key, failed 1" in out.stderr and "'big'" in out.stderr
    assert hubkv.KV("fs-lite", path=str(tmp_path / "b.sqlite3")).keys() == ["small"]


def test_usage_errors_exit_2_without_echoing_option_values(hubkv_cli: Run) -> None:
    cases = [
        ("copy", "--to", "fs-lite:token=SECRET-VALUE-123"),
        ("copy", "--to", "fs-lite:SECRET-VALUE-123"),
        ("copy", "--to", "memory", "--prefix-rewrite", "no-equals-sign"),
        ("copy", "--to", "no-such-store"),
        ("--driver", "memory", "export", "--from", "memory"),
        ("copy", "--from", "memory"),
        ("import", "missing.jsonl", "--to", "memory"),
        ("copy", "--to", "memory", "--batch-size", "0"),
    ]
    for args in cases:
        out = hubkv_cli(*args)
        assert out.returncode == 2, (args, out.stderr)
        assert out.stderr.count("\n") == 1, out.stderr
        assert "SECRET-VALUE-123" not in out.stderr
        assert "Traceback" not in out.stderr


def test_profiles_from_pyproject_with_environment_references(
    hubkv_cli: Run, tmp_path: Path
) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.hubkv]\n"
        'driver = "fs-lite"\n'
        'path = "app.sqlite3"\n'
        "[tool.hubkv.profiles.backup]\n"
        'driver = "fs-lite"\n'
        'path = "${BACKUP_DIR}/kv.sqlite3"\n'
    )
    hubkv.KV("fs-lite", path=str(tmp_path / "app.sqlite3")).set("settings", {"theme": "dark"})
    missing = hubkv_cli("copy", "--to", "backup")
    assert missing.returncode == 2
    assert "BACKUP_DIR is not set" in missing.stderr
    out = hubkv_cli("copy", "--to", "backup", extra_env={"BACKUP_DIR": "saved"})
    assert out.returncode == 0, out.stderr
    backup = hubkv.KV("fs-lite", path=str(tmp_path / "saved" / "kv.sqlite3"))
    assert backup.get("settings") == {"theme": "dark"}


def run_with_stderr_on_a_terminal(args: list[str], cwd: Path, columns: int = 0) -> tuple[int, str]:
    """Run ``python -m hubkv ARGS`` with stderr on a pseudo-terminal; (exit code, its text)."""
    controller, terminal = pty.openpty()
    if columns:
        fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 30, columns, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "hubkv", *args],
        cwd=cwd,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=terminal,
    )
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(controller)
    return process.wait(timeout=60), b"".join(chunks).decode(errors="replace")


def test_progress_bar_on_a_terminal_only(hubkv_cli: Run, tmp_path: Path) -> None:
    populate(hubkv.KV("fs-lite", path=str(tmp_path / "a.sqlite3")), 3000)
    args = ["copy", "--from", "fs-lite:path=a.sqlite3", "--to", "fs-lite:path=b.sqlite3"]
    for columns in (120, 0):  # a terminal, and a bare pseudo-terminal that reports no size
        code, shown = run_with_stderr_on_a_terminal(args, tmp_path, columns)
        assert code == 0
        assert "3000/3000" in shown and "100%" in shown and "keys/s" in shown, shown
        assert "hubkv: copied 3,000 keys" in shown
    code, quiet = run_with_stderr_on_a_terminal([*args, "--quiet"], tmp_path)
    assert (code, quiet) == (0, "")
    piped = hubkv_cli(*args)
    assert piped.returncode == 0
    assert piped.stderr.startswith("hubkv: copied 3,000 keys") and "%" not in piped.stderr
