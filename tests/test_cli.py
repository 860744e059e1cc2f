"""The hubkv command, run as a real subprocess the way users run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture
def cli(tmp_path: Path):  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUBKV_", "UPSTASH_", "KV_"))}
    env.pop("CLOUDFLARE_API_TOKEN", None)

    def run(*args: str, stdin: str | bytes | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "hubkv", *args],
            cwd=tmp_path,
            env=env,
            input=stdin.encode() if isinstance(stdin, str) else stdin,
            capture_output=True,
            timeout=60,
        )
        return subprocess.CompletedProcess(
            result.args,
            result.returncode,
            result.stdout.decode(errors="replace"),
            result.stderr.decode(errors="replace"),
        )

    return run


def test_settings_round_trip_on_the_default_store(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert cli("set", "settings", '{"theme": "system"}').returncode == 0
    got = cli("get", "settings")
    assert got.returncode == 0
    assert json.loads(got.stdout) == {"theme": "system"}
    assert (tmp_path / ".data" / "kv.sqlite3").is_file()


def test_every_command(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("set", "users:42:profile", '{"name": "ada"}').returncode == 0
    assert cli("set", "users:42:prefs", "-", stdin='{"lang": "en"}').returncode == 0
    assert cli("set", "cache:1", "1", "--ttl", "3600").returncode == 0
    assert cli("set", "text", '"123"').returncode == 0
    assert json.loads(cli("get", "text").stdout) == "123"

    has = cli("has", "users:42:profile")
    assert (has.returncode, has.stdout.strip()) == (0, "true")
    missing = cli("has", "nope")
    assert (missing.returncode, missing.stdout.strip()) == (1, "false")

    keys = cli("keys", "users:42:")
    assert json.loads(keys.stdout) == ["users:42:prefs", "users:42:profile"]
    assert json.loads(cli("keys").stdout) == [
        "cache:1",
        "text",
        "users:42:prefs",
        "users:42:profile",
    ]

    info = json.loads(cli("info").stdout)
    assert info["driver"] == "fs-lite" and info["keys"] == 4 and info["read_only"] is False
    assert info["location"].endswith("kv.sqlite3")

    assert json.loads(cli("clear", "cache:").stdout) == 1
    assert cli("delete", "text").returncode == 0
    assert cli("delete", "text").returncode == 0  # a missing key is fine
    got = cli("get", "text")
    assert got.returncode == 1 and "no key 'text'" in got.stderr

    refused = cli("clear")
    assert refused.returncode == 2 and "--all" in refused.stderr
    assert json.loads(cli("clear", "--all").stdout) == 2
    assert json.loads(cli("keys").stdout) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("set", "k", "{not json"), "not valid JSON"),
        (("set", "k", "text"), "not valid JSON"),
        (("set", "", "1"), "invalid key"),
        (("set", "k", "1", "--ttl", "-5"), "ttl must be > 0"),
        (("get", "bad\x01key"), "control character"),
        (("--driver", "nope", "get", "k"), "unknown driver 'nope'"),
        (("--option", "pth=x", "--driver", "fs-lite", "get", "k"), "unknown option"),
        (("--option", "novalue", "get", "k"), "NAME=VALUE"),
        (("frobnicate",), "invalid choice"),
        (("set", "k"), "required"),
    ],
)
def test_errors_are_one_line_with_exit_code_2(cli, args: tuple[str, ...], message: str) -> None:  # type: ignore[no-untyped-def]
    result = cli(*args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nests too deeply"),
        (b'"\xff"', "not valid JSON"),
        (b'"\xed\xb3\xbf"', "not valid JSON"),  # a lone surrogate in UTF-8 form
    ],
    ids=["deep", "invalid-utf-8", "surrogate"],
)
def test_hostile_stdin_is_one_line_with_exit_code_2(cli, stdin: bytes, message: str) -> None:  # type: ignore[no-untyped-def]
    result = cli("set", "k", "-", stdin=stdin)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert cli("keys").stdout.strip() == "[]"


def test_a_lone_surrogate_argument_is_exit_code_2(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("set", "k", '"\udcff"')
    assert result.returncode == 2, result.stderr
    assert "UTF-8" in result.stderr and "Traceback" not in result.stderr


def test_store_failures_exit_3(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "bad.sqlite3").write_bytes(b"not a database" * 100)
    result = cli("--driver", "fs-lite", "--option", "path=bad.sqlite3", "get", "k")
    assert result.returncode == 3
    assert "bad.sqlite3" in result.stderr and "Traceback" not in result.stderr


def test_driver_and_options_from_flags(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    flags = ("--driver", "fs-lite", "--option", "path=other/kv.sqlite3")
    assert cli(*flags, "set", "a", "[1, 2]").returncode == 0
    assert (tmp_path / "other" / "kv.sqlite3").is_file()
    assert json.loads(cli(*flags, "get", "a").stdout) == [1, 2]
    assert cli("get", "a").returncode == 1  # the default store is another file
    ro = cli(*flags, "--option", "read_only=true", "set", "a", "1")
    assert ro.returncode == 2 and "read-only" in ro.stderr
