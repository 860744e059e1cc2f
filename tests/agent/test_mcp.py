"""``hubkv mcp`` end to end: the real command as a subprocess, driven by the MCP SDK's client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

import hubkv
from hubkv.agent import KVCapability

from .conftest import INSIDE, NEIGHBOURS, SCOPE, fill

ROOT = Path(__file__).resolve().parents[2]
READ_TOOLS = ["kv_get", "kv_get_many", "kv_list_keys", "kv_has"]


def hubkv_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "hubkv", *args]


def run_client(
    tmp_path: Path, args: list[str], scenario: Callable[[Client], Awaitable[None]]
) -> None:
    """Start ``hubkv ARGS`` and run ``scenario`` with an MCP client connected to it."""
    command = hubkv_command(*args)
    server = StdioServerParameters(
        command=command[0],
        args=command[1:],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT)},
    )

    async def main() -> None:
        with anyio.fail_after(90):
            async with Client(server, read_timeout_seconds=60) as client:
                await scenario(client)

    anyio.run(main)


def answer(result: Any) -> dict[str, Any]:
    """The capability's result carried by an MCP tool result, checked for consistency."""
    text = result.content[0].text
    structured = result.structured_content
    assert json.loads(text) == structured
    assert result.is_error is (not structured["ok"])
    return structured  # type: ignore[no-any-return]


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    """An fs-lite file holding the scope's keys and its neighbours, written before the server."""
    path = tmp_path / "kv.sqlite3"
    with hubkv.KV("fs-lite", path=str(path)) as store:
        fill(store)
    return path


def test_read_only_server_lists_read_tools_and_answers(tmp_path: Path, store_path: Path) -> None:
    args = ["--driver", "fs-lite", "--option", f"path={store_path}", "mcp", "--prefix", SCOPE]
    expected_schemas = {
        tool.name: tool.input_schema for tool in KVCapability(hubkv.KV("memory"), SCOPE).tools
    }

    async def scenario(client: Client) -> None:
        listed = await client.list_tools()
        assert [tool.name for tool in listed.tools] == READ_TOOLS
        for tool in listed.tools:
            assert tool.annotations is not None and tool.annotations.read_only_hint is True
            assert tool.input_schema == expected_schemas[tool.name]
        got = answer(await client.call_tool("kv_get", {"key": "profile"}))
        assert got == {"ok": True, "key": "profile", "value": INSIDE["profile"]}
        keys = answer(await client.call_tool("kv_list_keys", {}))
        assert keys == {"ok": True, "keys": sorted(INSIDE), "next_cursor": None}
        many = answer(await client.call_tool("kv_get_many", {"keys": ["prefs", "gone"]}))
        assert many["values"] == {"prefs": INSIDE["prefs"]} and many["missing"] == ["gone"]
        refused = answer(await client.call_tool("kv_set", {"key": "profile", "value": "x"}))
        assert refused["error"]["type"] == "read_only"
        escape = answer(await client.call_tool("kv_get", {"key": "../43:secret"}))
        assert escape["error"]["type"] == "invalid_key"
        wrong = answer(await client.call_tool("kv_get", {"key": ["profile"]}))
        assert wrong["error"]["type"] == "invalid_arguments"
        unknown = answer(await client.call_tool("kv_clear", {"prefix": ""}))
        assert unknown["error"]["type"] == "read_only"

    run_client(tmp_path, args, scenario)
    with hubkv.KV("fs-lite", path=str(store_path)) as store:
        assert store.get(SCOPE + "profile") == INSIDE["profile"]
        assert len(store.keys()) == len(INSIDE) + len(NEIGHBOURS)


def test_writable_server_writes_under_the_scope(tmp_path: Path, store_path: Path) -> None:
    args = ["--driver", "fs-lite", "--option", f"path={store_path}"]
    args += ["mcp", "--prefix", SCOPE, "--writable", "--max-value-bytes", "1000"]

    async def scenario(client: Client) -> None:
        listed = await client.list_tools()
        hints = {tool.name: tool.annotations for tool in listed.tools}
        assert list(hints) == [*READ_TOOLS, "kv_set", "kv_delete"]
        assert hints["kv_set"] is not None and hints["kv_set"].read_only_hint is False
        assert hints["kv_delete"] is not None and hints["kv_delete"].destructive_hint is True
        stored = answer(await client.call_tool("kv_set", {"key": "draft", "value": {"v": 1}}))
        assert stored == {"ok": True, "key": "draft"}
        assert answer(await client.call_tool("kv_delete", {"key": "prefs"}))["ok"]
        too_big = answer(await client.call_tool("kv_set", {"key": "big", "value": "x" * 1000}))
        assert too_big["error"]["type"] == "value_too_large"
        deep: Any = 0
        for _ in range(150):  # the SDK's own JSON parsing stops near 200 levels
            deep = [deep]
        too_deep = answer(await client.call_tool("kv_set", {"key": "deep", "value": deep}))
        assert too_deep["error"]["type"] == "invalid_value"
        clear = answer(await client.call_tool("kv_clear", {"prefix": ""}))
        assert clear["error"]["type"] == "not_allowed"

    run_client(tmp_path, args, scenario)
    with hubkv.KV("fs-lite", path=str(store_path)) as store:
        assert store.get(SCOPE + "draft") == {"v": 1}
        assert not store.has(SCOPE + "prefs") and not store.has(SCOPE + "big")
        assert not store.has(SCOPE + "deep")
        assert {key: store.get(key) for key in NEIGHBOURS} == {
            key: f"not yours: {why}" for key, why in NEIGHBOURS.items()
        }


def test_clear_and_call_limit_on_a_memory_store(tmp_path: Path) -> None:
    args = ["--driver", "memory", "mcp", "--prefix", "agents:notes:", "--writable"]
    args += ["--allow-clear", "--max-calls", "4", "--namespace", "notes"]

    async def scenario(client: Client) -> None:
        listed = await client.list_tools()
        assert [tool.name for tool in listed.tools][-1] == "notes_clear"
        assert answer(await client.call_tool("notes_set", {"key": "a", "value": 1}))["ok"]
        assert answer(await client.call_tool("notes_set", {"key": "b", "value": 2}))["ok"]
        cleared = answer(await client.call_tool("notes_clear", {"prefix": ""}))
        assert cleared == {"ok": True, "removed": 2}
        assert answer(await client.call_tool("notes_list_keys", {}))["keys"] == []
        over = answer(await client.call_tool("notes_list_keys", {}))
        assert over["error"]["type"] == "limit_exceeded"

    run_client(tmp_path, args, scenario)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["mcp", "--prefix", "users:42"], "must end with ':' or '/'"),
        (["mcp", "--prefix", SCOPE, "--allow-clear"], "allow_clear=True needs writable=True"),
        (["mcp", "--prefix", SCOPE, "--max-calls", "0"], "max_calls must be a positive int"),
        (
            ["--option", "read_only=true", "mcp", "--prefix", SCOPE, "--writable"],
            "needs a writable store",
        ),
    ],
)
def test_bad_options_exit_2_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env = {name: value for name, value in env.items() if not name.startswith("HUBKV_")}
    done = subprocess.run(
        hubkv_command("--driver", "memory", *args),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("hubkv: error: ") and done.stderr.count("\n") == 1
    assert message in done.stderr
