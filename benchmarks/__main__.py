"""``python -m benchmarks``: run everything, write the results, print the table.

Examples::

    python -m benchmarks                     # the full run, into benchmarks/results/
    python -m benchmarks --quick             # under a minute, into a new temporary folder
    python -m benchmarks --only phases --stores "hubkv fs-lite,raw sqlite3"
    python -m benchmarks --report-only benchmarks/results   # rebuild md + charts from the JSON
    python -m benchmarks --update-readme     # also copy the table into README.md

The exit status is 1 when a check failed (a store returned a wrong answer,
hubkv lost a write); missed speed targets are reported, not failed.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.util
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import report
from .concurrent import WRITERS, write_concurrently
from .overhead import layers
from .scaling import FULL_SCALING, QUICK_SCALING, scale
from .stores import STORE_NAMES, available_stores
from .workload import FULL, QUICK, compare

PARTS = ("phases", "overhead", "concurrent", "scaling", "remote")
RESULTS = Path(__file__).parent / "results"
README = Path(__file__).parent.parent / "README.md"
_REQUIRED = ("diskcache", "sqlitedict", "matplotlib")


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="hubkv side by side with raw sqlite3, diskcache, sqlitedict, dicts and lmdb.",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: under a minute")
    parser.add_argument(
        "--out",
        type=Path,
        help="folder for results.md/.json and the charts "
        "(default: benchmarks/results, or a new temporary folder with --quick)",
    )
    parser.add_argument(
        "--only", help=f"comma-separated parts to run, among {', '.join(PARTS)} (default: all)"
    )
    parser.add_argument(
        "--stores",
        help=f"comma-separated stores (default: all installed): {', '.join(STORE_NAMES)}",
    )
    parser.add_argument("--keys", type=int, help="keys loaded for the phases (a power of ten)")
    parser.add_argument("--repetitions", type=int, help="repetitions of the phases")
    parser.add_argument("--tmp", type=Path, help="where the stores' files go (default: $TMPDIR)")
    parser.add_argument(
        "--report-only", type=Path, metavar="DIR", help="rebuild DIR's markdown and charts"
    )
    parser.add_argument(
        "--update-readme",
        action="store_true",
        help="copy the table and chart links into README.md's Performance section",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    if args.report_only:
        results = json.loads((args.report_only / "results.json").read_text(encoding="utf-8"))
        return _finish(results, args.report_only, args.update_readme)
    missing = [name for name in _REQUIRED if importlib.util.find_spec(name) is None]
    if missing:
        print(
            f"missing {', '.join(missing)}: pip install -e '.[bench]' (or: tox -e bench)",
            file=sys.stderr,
        )
        return 2
    parts = _choose(args.only, PARTS, "part")
    found, left_out = available_stores()
    stores = _choose(args.stores, found, "store") if args.stores else found
    sizes = QUICK if args.quick else FULL
    sizes = dataclasses.replace(
        sizes, keys=args.keys or sizes.keys, repetitions=args.repetitions or sizes.repetitions
    )
    scaling = QUICK_SCALING if args.quick else FULL_SCALING
    writes_per_writer, rounds = (300, 1) if args.quick else (5_000, 5)
    out = args.out or (Path(tempfile.mkdtemp(prefix="hubkv-bench-")) if args.quick else RESULTS)
    work = Path(tempfile.mkdtemp(prefix="hubkv-bench-files-", dir=args.tmp))

    def log(message: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {message}", file=sys.stderr, flush=True)

    started = time.monotonic()
    results: dict[str, Any] = {
        "run": {
            "command": "python -m benchmarks " + shlex.join(sys.argv[1:] if argv is None else argv),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "stores": stores,
            "left_out": left_out,
            "sizes": dataclasses.asdict(sizes),
            "scaling_repetitions": scaling.repetitions,
            "writers": WRITERS,
            "writes_per_writer": writes_per_writer,
            "rounds": rounds,
            "load_before": _load(),
        },
        "machine": report.machine(work),
    }
    try:
        if "phases" in parts:
            results["phases"] = compare(stores, sizes, work / "phases", log)
        if "overhead" in parts:
            results["overhead"] = layers(
                sizes.keys, sizes.reads, sizes.repetitions, work / "overhead", log
            )
        if "concurrent" in parts:
            results["concurrent"] = write_concurrently(
                stores, writes_per_writer, rounds, work / "concurrent", log
            )
        if "scaling" in parts:
            results["scaling"] = scale(stores, scaling, work / "scaling", log)
        if "remote" in parts:
            from .remote import compare_remote

            results["remote"] = compare_remote(quick=args.quick, log=log)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["run"]["seconds"] = time.monotonic() - started
    results["run"]["load_after"] = _load()
    return _finish(results, out, args.update_readme)


def _finish(results: dict[str, Any], out: Path, update_readme: bool) -> int:
    paths = report.write(results, out)
    print(report.markdown(results))
    print("wrote " + ", ".join(str(path) for path in paths), file=sys.stderr)
    if update_readme:
        _update_readme(results, out)
    problems = report.all_problems(results)
    return 1 if problems else 0


def _choose(given: str | None, allowed: Any, what: str) -> list[str]:
    if not given:
        return list(allowed)
    chosen = [item.strip() for item in given.split(",") if item.strip()]
    unknown = [item for item in chosen if item not in allowed]
    if unknown:
        raise SystemExit(f"unknown {what}(s) {unknown}; choose among {', '.join(allowed)}")
    return chosen


def _load() -> str:
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


_START = "<!-- benchmarks:start (written by python -m benchmarks --update-readme) -->"
_END = "<!-- benchmarks:end -->"


def _update_readme(results: dict[str, Any], out: Path) -> None:
    """Replace what lies between README.md's benchmark markers with the latest summary."""
    text = README.read_text(encoding="utf-8")
    if _START not in text or _END not in text:
        print(f"README.md has no {_START} ... {_END} markers: not updated", file=sys.stderr)
        return
    relative = os.path.relpath(out, README.parent)
    body = report.readme_section(results, relative)
    head, _, rest = text.partition(_START)
    _, _, tail = rest.partition(_END)
    README.write_text(f"{head}{_START}\n{body}\n{_END}{tail}", encoding="utf-8")
    print("updated README.md", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
