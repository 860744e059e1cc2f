"""``hubkv export``, ``hubkv import`` and ``hubkv copy``: moving data between stores.

    hubkv export users: -o users.jsonl          # JSON Lines, stdout by default
    hubkv import users.jsonl --skip-existing    # into the configured store
    hubkv copy --from fs-lite:path=.data/kv.sqlite3 --to prod --dry-run

A SPEC (``--from``, ``--to``) is a profile name from ``[tool.hubkv.profiles]``,
a driver name, or ``DRIVER:NAME=VALUE,...`` (see :func:`hubkv.config.open_spec`);
without one, the store is the one ``--driver``/``--option`` or the
configuration names. A progress bar is drawn on stderr when it is a
terminal; the summary goes to stderr, or as JSON to stdout with ``--json``
(to stderr when stdout carries the export). Exit codes as for every
command: 0 ok, 2 bad input (nothing written), 3 a store failed or some keys
failed (re-run to finish).

Nothing slow is imported here (this module loads on every start): the
transfer code and its progress bar load when a command runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import msgspec

from .cli import EXIT_FAILED, EXIT_OK, open_store
from .errors import ConfigError

if TYPE_CHECKING:
    from .store import KV
    from .tools import Summary

__all__ = ["add_commands"]


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``export``, ``import`` and ``copy`` to the ``hubkv`` parser."""
    export = commands.add_parser(
        "export", help="write the keys under PREFIX as JSON Lines (key, value, ttl)"
    )
    export.add_argument("prefix", nargs="?", default="", metavar="PREFIX")
    export.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: stdout)")
    export.add_argument("--from", dest="source", metavar="SPEC", help="the store to read")
    _common(export)
    export.set_defaults(handler=_export)

    load = commands.add_parser(
        "import", help="check a JSON Lines file, then write its records (nothing if a line is bad)"
    )
    load.add_argument("file", metavar="FILE", help="a file from hubkv export, or - for stdin")
    load.add_argument("--to", dest="target", metavar="SPEC", help="the store to write")
    _writing(load)
    _common(load)
    load.set_defaults(handler=_import)

    copy = commands.add_parser(
        "copy", help="copy the keys under PREFIX between two stores, with their TTLs (resumable)"
    )
    copy.add_argument("prefix", nargs="?", default="", metavar="PREFIX")
    copy.add_argument(
        "--from", dest="source", metavar="SPEC", help="the store to read (default: configured)"
    )
    copy.add_argument(
        "--to", dest="target", metavar="SPEC", required=True, help="the store to write"
    )
    _writing(copy)
    _common(copy)
    copy.set_defaults(handler=_copy)


def _writing(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--prefix-rewrite",
        metavar="OLD=NEW",
        help="keys starting with OLD get NEW instead (OLD can't contain '=')",
    )
    parser.add_argument(
        "--skip-existing", action="store_true", help="leave keys the target already has alone"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="read and check everything, write nothing"
    )


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--batch-size", type=int, default=None, metavar="N", help="keys per batch (default 500)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


# -- handlers -------------------------------------------------------------


def _export(args: argparse.Namespace) -> int:
    from . import tools

    to_stdout = args.output in (None, "-")
    dest = sys.stdout.buffer if to_stdout else args.output
    with _store(args, args.source) as store:
        summary = tools.export(store, dest, args.prefix, **_options(args))
    return _report(args, summary, sys.stderr if to_stdout else sys.stdout)


def _import(args: argparse.Namespace) -> int:
    from . import tools

    with _store(args, args.target) as store, _import_source(args.file) as source:
        return _run(
            args,
            lambda: tools.import_file(store, source, **_options(args), **_write_options(args)),
        )


def _copy(args: argparse.Namespace) -> int:
    from . import tools

    with _store(args, args.source) as source, _store(args, args.target, named=True) as target:
        return _run(
            args,
            lambda: tools.copy(
                source, target, args.prefix, **_options(args), **_write_options(args)
            ),
        )


# -- helpers --------------------------------------------------------------


def _run(args: argparse.Namespace, job: Callable[[], Summary]) -> int:
    """Run an import or copy; a store failure still reports what was done (``--json``)."""
    from .tools import TransferInterrupted

    try:
        summary = job()
    except TransferInterrupted as exc:
        if args.json:
            _print_json(exc.summary, sys.stdout)
        raise
    return _report(args, summary, sys.stdout)


def _report(args: argparse.Namespace, summary: Summary, json_stream: Any) -> int:
    if args.json:
        _print_json(summary, json_stream)
    elif not args.quiet:
        print(f"hubkv: {summary}", file=sys.stderr)
    if not summary.ok:
        if args.quiet or args.json:
            print(
                f"hubkv: error: {summary.failed:,} keys failed: {summary.errors[0]}",
                file=sys.stderr,
            )
        return EXIT_FAILED
    return EXIT_OK


def _print_json(summary: Summary, stream: Any) -> None:
    stream.write(msgspec.json.encode(summary.as_dict()).decode() + "\n")
    stream.flush()


def _options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {"progress": False if args.quiet else None}
    if args.batch_size is not None:
        options["batch_size"] = args.batch_size
    return options


def _write_options(args: argparse.Namespace) -> dict[str, Any]:
    rewrite = None
    if args.prefix_rewrite is not None:
        old, equals, new = args.prefix_rewrite.partition("=")
        if not equals:
            raise ConfigError(
                "--prefix-rewrite takes OLD=NEW, e.g. --prefix-rewrite staging:=prod: "
                "(an empty OLD adds NEW to every key, an empty NEW strips OLD)"
            )
        rewrite = (old, new)
    return {"prefix_rewrite": rewrite, "skip_existing": args.skip_existing, "dry_run": args.dry_run}


@contextmanager
def _store(args: argparse.Namespace, spec: str | None, named: bool = False) -> Iterator[KV]:
    """The store SPEC names, else the one ``--driver``/``--option`` (or the configuration) name."""
    if spec is None:
        store = open_store(args)
    else:
        if (args.driver is not None or args.option) and not named:
            raise ConfigError(
                "give the store either as a SPEC (--from/--to) or with --driver/--option, not both"
            )
        from .config import open_spec

        store = open_spec(spec)
    with store:
        yield store


@contextmanager
def _import_source(name: str) -> Iterator[Any]:
    """A path, or stdin copied to a temporary file (an import reads its file twice)."""
    if name != "-":
        yield name
        return
    import shutil
    import tempfile

    with tempfile.TemporaryFile() as copy:
        shutil.copyfileobj(sys.stdin.buffer, copy)
        copy.seek(0)
        yield copy
