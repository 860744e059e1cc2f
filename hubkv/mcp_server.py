"""``hubkv mcp``: a scoped KV capability served over MCP (Model Context Protocol).

Any MCP client (Claude Desktop, IDEs, agent frameworks) can then read, and
with ``--writable`` write, the keys under one prefix of one store::

    hubkv --driver fs-lite --option path=data/app.sqlite3 mcp --prefix users:42:
    hubkv mcp --prefix agents:notes: --writable --max-calls 500

The server speaks stdio with the official ``mcp`` Python SDK (``pip install
'hubkv[mcp]'``). It offers exactly the tools of :class:`hubkv.agent.KVCapability`
(read tools carry the ``readOnlyHint`` annotation; write tools exist only
with ``--writable``, ``kv_clear`` only with ``--allow-clear`` as well), and
answers every call with the capability's JSON result, as text and as
structured content, flagged ``isError`` when ``ok`` is false.

This module imports nothing slow at module level: the SDK is imported only
when the server starts, so ``hubkv`` itself stays fast.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcp.server.lowlevel import Server

    from .agent import KVCapability

__all__ = ["add_commands", "build_server", "serve_stdio"]

_INSTALL_HINT = "hubkv mcp needs the MCP SDK: pip install 'hubkv[mcp]'"


def add_commands(subparsers: Any) -> None:
    """Add the ``mcp`` subcommand to the ``hubkv`` command line."""
    from .agent import DEFAULT_MAX_KEYS_PER_PAGE, DEFAULT_MAX_VALUE_BYTES

    command = subparsers.add_parser(
        "mcp",
        help="serve the keys under PREFIX to MCP clients over stdio (read-only by default)",
        description="Serve a scoped KV capability over stdio with the Model Context Protocol.",
    )
    command.add_argument(
        "--prefix",
        required=True,
        help="the scope, ending with ':' or '/', e.g. users:42: (keys are relative to it)",
    )
    command.add_argument("--writable", action="store_true", help="offer set and delete too")
    command.add_argument(
        "--allow-clear", action="store_true", help="offer clear too (needs --writable)"
    )
    command.add_argument(
        "--max-value-bytes",
        type=int,
        default=DEFAULT_MAX_VALUE_BYTES,
        metavar="N",
        help=f"largest value as JSON a client may write or read (default {DEFAULT_MAX_VALUE_BYTES})",
    )
    command.add_argument(
        "--max-keys-per-page",
        type=int,
        default=DEFAULT_MAX_KEYS_PER_PAGE,
        metavar="N",
        help=f"keys per list page and per get_many (default {DEFAULT_MAX_KEYS_PER_PAGE})",
    )
    command.add_argument(
        "--max-calls", type=int, metavar="N", help="tool calls answered in all (default: no limit)"
    )
    command.add_argument(
        "--namespace", default="kv", help="tool name prefix: NAMESPACE_get, ... (default kv)"
    )
    command.set_defaults(handler=_run)


def build_server(capability: KVCapability) -> Server[Any]:
    """An MCP server (low-level SDK ``Server``) that offers ``capability``'s tools."""
    import anyio.to_thread
    import mcp.types as types
    import msgspec
    from mcp.server.lowlevel import Server

    from . import __version__

    tools = [types.Tool.model_validate(tool) for tool in capability.mcp_tools()]
    access = "read and write" if capability.writable else "read (this server is read-only)"
    instructions = (
        f"Key-value storage confined to one scope. Tools {access} JSON values under keys "
        "relative to that scope, e.g. 'profile' or 'notes:1'; list_keys pages with a cursor. "
        "Every result has ok: true, or ok: false and an error with a type and a message."
    )

    async def list_tools(
        context: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    async def call_tool(context: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        # The capability is synchronous (and may do network I/O): keep it off the event loop.
        result = await anyio.to_thread.run_sync(capability.call, params.name, params.arguments)
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=msgspec.json.encode(result).decode())],
            structured_content=result,
            is_error=not result["ok"],
        )

    return Server(
        "hubkv",
        version=__version__,
        instructions=instructions,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


async def serve_stdio(capability: KVCapability) -> None:
    """Serve ``capability`` on this process's stdin and stdout until the client leaves."""
    from mcp.server.stdio import stdio_server

    server = build_server(capability)
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


def _run(args: argparse.Namespace) -> int:
    from .agent import KVCapability
    from .cli import open_store
    from .errors import ConfigError

    try:
        import anyio
        import mcp  # noqa: F401 - fail early, with the install hint
    except ImportError as exc:
        raise ConfigError(f"{_INSTALL_HINT} ({exc.name} is missing)") from None
    with open_store(args) as store:
        capability = KVCapability(
            store,
            args.prefix,
            writable=args.writable,
            allow_clear=args.allow_clear,
            max_value_bytes=args.max_value_bytes,
            max_keys_per_page=args.max_keys_per_page,
            max_calls=args.max_calls,
            namespace=args.namespace,
        )
        anyio.run(serve_stdio, capability)
    return 0
