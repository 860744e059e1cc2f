"""The ``hubkv`` command: the store from a shell, JSON in and out.

Exit codes: 0 ok; 1 the key is missing; 2 a usage or input error (bad key,
bad JSON, bad configuration); 3 the store failed (I/O, remote service).
Errors are one line on stderr, never a traceback.

    hubkv set settings '{"theme": "system"}'
    hubkv get settings
    hubkv keys users:42:
    hubkv --driver fs-lite --option path=data/app.sqlite3 info
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import msgspec

from .errors import ConfigError, DriverError, KVError
from .store import KV

__all__ = ["main", "build_parser", "open_store", "print_json"]

EXIT_OK, EXIT_MISSING, EXIT_USAGE, EXIT_FAILED = 0, 1, 2, 3

# Modules that add subcommands with add_commands(subparsers). They are
# imported on every start, so they must import nothing slow at module level.
COMMAND_MODULES: tuple[str, ...] = ("hubkv.mcp_server", "hubkv.tools_cli", "hubkv.cloudflare_cli")

Handler = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``hubkv``, with every subcommand."""
    parser = _Parser(prog="hubkv", description="Small values addressed by string keys.")
    parser.add_argument("--driver", help="driver name (default: the resolved configuration)")
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a driver or store option, e.g. path=data/app.sqlite3 (repeatable)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    get = commands.add_parser("get", help="print the JSON value of KEY (exit 1 if missing)")
    get.add_argument("key")
    get.set_defaults(handler=_get)

    put = commands.add_parser("set", help="store a JSON value under KEY")
    put.add_argument("key")
    put.add_argument("value", metavar="JSON", help="a JSON document, or - to read it from stdin")
    put.add_argument("--ttl", type=float, help="seconds until the key expires")
    put.set_defaults(handler=_set)

    has = commands.add_parser("has", help="print true or false (exit 1 if missing)")
    has.add_argument("key")
    has.set_defaults(handler=_has)

    delete = commands.add_parser("delete", help="remove KEY (a missing key is fine)")
    delete.add_argument("key")
    delete.set_defaults(handler=_delete)

    keys = commands.add_parser("keys", help="print the keys under PREFIX as a JSON list")
    keys.add_argument("prefix", nargs="?", default="")
    keys.set_defaults(handler=_keys)

    clear = commands.add_parser("clear", help="remove the keys under PREFIX; print the count")
    clear.add_argument("prefix", nargs="?", default="")
    clear.add_argument("--all", action="store_true", help="needed to clear every key")
    clear.set_defaults(handler=_clear)

    info = commands.add_parser("info", help="print the driver, location and key count")
    info.set_defaults(handler=_info)

    for module in COMMAND_MODULES:
        importlib.import_module(module).add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``hubkv`` with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except DriverError as exc:
        return _fail(exc, EXIT_FAILED)
    except KVError as exc:
        return _fail(exc, EXIT_USAGE)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # a bug: still one line, never a traceback
        return _fail(
            f"unexpected {type(exc).__name__}: {exc} (a hubkv bug: please report it with "
            "the command that caused it)",
            EXIT_FAILED,
        )


def open_store(args: argparse.Namespace) -> KV:
    """The store that ``--driver`` and ``--option`` (or the configuration) name."""
    options: dict[str, Any] = {}
    for item in args.option:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ConfigError(f"--option takes NAME=VALUE, got {item!r}")
        options[name.strip()] = value
    return KV(args.driver, **options)


def print_json(value: Any) -> None:
    """Print ``value`` as one line of JSON."""
    sys.stdout.write(msgspec.json.encode(value).decode() + "\n")


def _fail(error: object, code: int) -> int:
    print(f"hubkv: error: {error}", file=sys.stderr)
    return code


def _get(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        missing = object()
        value = store.get(args.key, missing)
    if value is missing:
        return _fail(f"no key {args.key!r}", EXIT_MISSING)
    print_json(value)
    return EXIT_OK


def _set(args: argparse.Namespace) -> int:
    try:
        text = sys.stdin.buffer.read() if args.value == "-" else args.value
        value = msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        return _fail(
            f"the value is not valid JSON ({exc}); quote strings, e.g. '\"text\"'", EXIT_USAGE
        )
    except UnicodeError:
        return _fail("the value is not valid UTF-8 text; give JSON in UTF-8", EXIT_USAGE)
    except RecursionError:
        return _fail("the value nests too deeply to be stored; store a flatter one", EXIT_USAGE)
    with open_store(args) as store:
        store.set(args.key, value, ttl=args.ttl)
    return EXIT_OK


def _has(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        found = store.has(args.key)
    print_json(found)
    return EXIT_OK if found else EXIT_MISSING


def _delete(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        store.delete(args.key)
    return EXIT_OK


def _keys(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        print_json(store.keys(args.prefix))
    return EXIT_OK


def _clear(args: argparse.Namespace) -> int:
    if not args.prefix and not args.all:
        return _fail("clearing every key needs --all (or give a PREFIX)", EXIT_USAGE)
    with open_store(args) as store:
        print_json(store.clear(args.prefix))
    return EXIT_OK


def _info(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        count = sum(1 for _ in store.iter_keys())
        print_json(
            {
                "driver": store.driver.name,
                "location": store.driver.describe(),
                "read_only": store.is_read_only,
                "keys": count,
            }
        )
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
