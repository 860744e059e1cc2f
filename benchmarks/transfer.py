"""Export, import and copy of many keys: throughput and peak memory.

``hubkv.tools`` streams keys and moves them in batches, so its memory should
not grow with the store. This measures it: each phase runs in a fresh
process that reports its own peak RSS (``ru_maxrss``) before and after the
work, at two store sizes. Flat peaks across sizes mean bounded memory.

Phases, on an fs-lite store of N keys (values ~150 bytes of JSON, a fifth
of them with a one-hour TTL):

- ``export``: fs-lite -> a JSON Lines file;
- ``import``: that file -> a new fs-lite store (checked, then written);
- ``copy``: fs-lite -> another new fs-lite store.

"peak RSS" is the phase's whole process (Python, hubkv, SQLite's page cache);
"growth" is how much the peak rose while the phase ran.

``--requests`` counts instead the HTTP requests that export, import and copy
send to the remote drivers, on the test suite's local stand-ins (the Upstash
REST stand-in over ``redis-server``, Cloudflare's workerd through
miniflare: what the tests need). The store holds N keys (default 1,000)
whose TTLs are all different (3,600 + i seconds): the case where grouping
writes by TTL, or reading TTLs key by key, costs one request per key.
Cloudflare allows 1,200 API requests per 5 minutes, so these counts decide
whether a backup is minutes or hours.

Examples::

    python -m benchmarks.transfer                   # 10,000 and 100,000 keys
    python -m benchmarks.transfer --keys 1000000    # one size
    python -m benchmarks.transfer --json transfer.json
    python -m benchmarks.transfer --requests        # requests per phase, upstash and cloudflare

Each phase checks its result (key count, sample values, TTLs) and the run
exits 1 when one is wrong. Timings are for reading, not asserted anywhere.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PHASES = ("export", "import", "copy")
DEFAULT_SIZES = (10_000, 100_000)
_BATCH = 5_000  # keys per set_many while loading the source (untimed)


def value(i: int) -> dict[str, Any]:
    """A typical small JSON value (~150 bytes encoded)."""
    return {
        "id": i,
        "name": f"user-{i}",
        "email": f"user{i}@example.com",
        "flags": {"beta": i % 2 == 0, "admin": i % 97 == 0},
        "tags": ["alpha", "beta", "gamma"][: i % 4],
        "bio": "lorem ipsum dolor sit amet " * 2,
    }


def key(i: int) -> str:
    return f"users:{i:08d}:profile"


def load_source(path: Path, count: int) -> None:
    """Write ``count`` keys to a new fs-lite store at ``path`` (a fifth with a TTL)."""
    import hubkv

    with hubkv.KV("fs-lite", path=str(path)) as store:
        for start in range(0, count, _BATCH):
            numbers = range(start, min(start + _BATCH, count))
            store.set_many({key(i): value(i) for i in numbers if i % 5})
            store.set_many({key(i): value(i) for i in numbers if not i % 5}, ttl=3600)


def run_phase(phase: str, source: Path, file: Path, target: Path) -> dict[str, Any]:
    """One phase in this process: its seconds, keys written and peak RSS growth."""
    import hubkv
    from hubkv import tools

    rss_before = _peak_rss_kib()
    started = time.perf_counter()
    if phase == "export":
        summary = tools.export(hubkv.KV("fs-lite", path=str(source)), file, progress=False)
    elif phase == "import":
        summary = tools.import_file(hubkv.KV("fs-lite", path=str(target)), file, progress=False)
    else:
        summary = tools.copy(
            hubkv.KV("fs-lite", path=str(source)),
            hubkv.KV("fs-lite", path=str(target)),
            progress=False,
        )
    seconds = time.perf_counter() - started
    return {
        "phase": phase,
        "written": summary.written,
        "failed": summary.failed,
        "seconds": seconds,
        "rss_start_kib": rss_before,
        "rss_peak_kib": _peak_rss_kib(),
    }


def _peak_rss_kib() -> int:
    """This process's peak resident memory, in KiB.

    Linux's ``VmHWM`` belongs to the process image, so it starts afresh at
    ``exec``; ``ru_maxrss`` would carry over the parent's peak from before the
    fork (here: the parent that loaded the store).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS


def check(phase: str, count: int, source: Path, file: Path, target: Path) -> list[str]:
    """What is wrong with a phase's output (empty when it is right)."""
    import hubkv

    problems = []
    if phase == "export":
        lines = file.read_bytes().count(b"\n")
        if lines != count:
            problems.append(f"export wrote {lines} lines for {count} keys")
        return problems
    with (
        hubkv.KV("fs-lite", path=str(target)) as store,
        hubkv.KV("fs-lite", path=str(source)) as old,
    ):
        found = sum(1 for _ in store.iter_keys())
        if found != count:
            problems.append(f"{phase} left {found} keys of {count}")
        for i in (0, 1, count // 2, count - 1):
            if store.get(key(i)) != value(i):
                problems.append(f"{phase}: wrong value for {key(i)}")
                continue
            ttl, expected = store.ttl(key(i)), old.ttl(key(i))
            # The TTL left in the source, to the second (the file's copy ages since export).
            slack = 2 + (time.time() - file.stat().st_mtime if phase == "import" else 0)
            if (ttl is None) != (expected is None) or abs((ttl or 0) - (expected or 0)) > slack:
                problems.append(f"{phase}: TTL {ttl} for {key(i)}, {expected} in the source")
    return problems


def measure(count: int, folder: Path) -> list[dict[str, Any]]:
    """Load a store of ``count`` keys, then run each phase in its own process."""
    source, file = folder / "source.sqlite3", folder / "export.jsonl"
    load_source(source, count)
    results = []
    for phase in PHASES:
        target = folder / f"{phase}-target.sqlite3"
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.transfer", "--phase", phase]
            + ["--source", str(source), "--file", str(file), "--target", str(target)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(done.stdout)
        result["keys"] = count
        result["problems"] = check(phase, count, source, file, target)
        if phase == "export":
            result["file_bytes"] = file.stat().st_size
        results.append(result)
    return results


def table(results: list[dict[str, Any]]) -> str:
    """The results as a Markdown table."""
    rows = [
        "| keys | phase | seconds | keys/s | peak RSS | growth during the phase |",
        "| ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        rows.append(
            f"| {r['keys']:,} | {r['phase']} | {r['seconds']:.2f} | "
            f"{r['written'] / r['seconds']:,.0f} | {r['rss_peak_kib'] / 1024:.1f} MiB | "
            f"+{(r['rss_peak_kib'] - r['rss_start_kib']) / 1024:.1f} MiB |"
        )
    return "\n".join(rows)


# -- requests sent to remote drivers ------------------------------------------


#: Keys with distinct TTLs in the request count (override with --keys).
REQUEST_KEYS = 1000


def remote_ttl(i: int) -> int:
    """Distinct whole seconds, all above Cloudflare's 60 s minimum."""
    return 3600 + i


def count_requests(count: int = REQUEST_KEYS) -> list[dict[str, Any]]:
    """Requests per phase against the local Upstash and Cloudflare stand-ins.

    Rows: ``phase``, ``source``/``target`` and the requests each side was sent
    (``source_requests``, ``target_requests``), plus ``problems`` found when
    checking the data that arrived.
    """
    import hubkv
    from hubkv import tools
    from tests.standins.cloudflare_kv import CloudflareKV
    from tests.standins.redis_server import start_redis_server
    from tests.standins.upstash_rest import UpstashRest

    items = [(key(i), value(i), float(remote_ttl(i))) for i in range(count)]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="hubkv-transfer-requests-") as folder:
        redis_server = start_redis_server(Path(folder))
        rest = UpstashRest(redis_server.port).start()
        cloudflare = CloudflareKV().start()
        bases = iter(range(1_000_000))

        def upstash() -> hubkv.KV:
            return hubkv.KV("upstash", url=rest.url, token=rest.token, base=f"b{next(bases)}")

        def cloudflare_kv() -> hubkv.KV:
            return hubkv.KV(
                "cloudflare-kv-binding", **cloudflare.options(cloudflare.create_namespace())
            )

        makers = {"upstash": upstash, "cloudflare": cloudflare_kv}
        try:
            sources = {name: make() for name, make in makers.items()}
            for store in sources.values():
                store.set_many_with_ttls(items)  # untimed, uncounted
            for name, source in sources.items():
                # The sampled keys' expiry times in the source: the copies must keep them.
                expiries = {
                    sample: time.time() + (source.ttl(sample) or 0)
                    for sample, _, _ in _samples(items)
                }
                file = Path(folder) / f"{name}.jsonl"
                rows.append(
                    _counted(
                        "export",
                        name,
                        source,
                        "file",
                        None,
                        count,
                        lambda s=source, f=file: tools.export(s, f, progress=False),
                    )
                )
                for other, make in makers.items():
                    target = make()
                    rows.append(
                        _counted(
                            "copy",
                            name,
                            source,
                            other,
                            target,
                            count,
                            lambda s=source, t=target: tools.copy(s, t, progress=False),
                        )
                    )
                    rows[-1]["problems"] += _check_remote(target, items, expiries)
                target = make()
                # An import gives each key the TTL the file holds from the moment it is written.
                exported = {
                    r["key"]: r["ttl"] for r in map(json.loads, file.read_text().splitlines())
                }
                expiries = {sample: time.time() + exported[sample] for sample in expiries}
                rows.append(
                    _counted(
                        "import",
                        "file",
                        None,
                        name,
                        target,
                        count,
                        lambda t=target, f=file: tools.import_file(t, f, progress=False),
                    )
                )
                rows[-1]["problems"] += _check_remote(target, items, expiries)
        finally:
            cloudflare.stop()
            rest.stop()
            redis_server.stop()
    return rows


def _requests(store: Any) -> int:
    return 0 if store is None else int(store.driver.http.requests_sent)


def _counted(
    phase: str,
    source: str,
    source_store: Any,
    target: str,
    target_store: Any,
    count: int,
    run: Any,
) -> dict[str, Any]:
    before = _requests(source_store), _requests(target_store)
    started = time.perf_counter()
    summary = run()
    seconds = time.perf_counter() - started
    problems = [] if summary.written == count and summary.ok else [f"{phase}: {summary}"]
    return {
        "phase": phase,
        "source": source,
        "target": target,
        "keys": count,
        "written": summary.written,
        "seconds": seconds,
        "source_requests": _requests(source_store) - before[0],
        "target_requests": _requests(target_store) - before[1],
        "problems": problems,
    }


def _check_remote(
    store: Any, items: list[tuple[str, Any, float]], expiries: dict[str, float]
) -> list[str]:
    """What differs between ``store`` and ``items`` at a few keys (values; expiry times to 5 s)."""
    problems = []
    for name, expected, _ in _samples(items):
        if store.get(name) != expected:
            problems.append(f"{store.driver.describe()}: wrong value for {name}")
        remaining, left = store.ttl(name), expiries[name] - time.time()
        if remaining is None or abs(remaining - left) > 5:
            problems.append(
                f"{store.driver.describe()}: TTL {remaining} for {name}, {left:.0f} expected"
            )
    return problems


def _samples(items: list[tuple[str, Any, float]]) -> list[tuple[str, Any, float]]:
    return [items[0], items[len(items) // 2], items[-1]]


def request_table(rows: list[dict[str, Any]]) -> str:
    """The request counts as a Markdown table."""
    lines = [
        "| phase | from | to | keys | requests to the source | requests to the target | seconds |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['phase']} | {r['source']} | {r['target']} | {r['keys']:,} | "
            f"{r['source_requests'] if r['source'] != 'file' else '-'} | "
            f"{r['target_requests'] if r['target'] != 'file' else '-'} | {r['seconds']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.transfer", description=__doc__)
    parser.add_argument("--keys", type=int, action="append", help="store size (repeatable)")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument(
        "--requests",
        action="store_true",
        help="count the requests sent to upstash and cloudflare (local stand-ins) instead",
    )
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--target", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase:  # a child process: one phase, results as JSON on stdout
        print(json.dumps(run_phase(args.phase, args.source, args.file, args.target)))
        return 0

    if args.requests:
        rows = [row for count in args.keys or [REQUEST_KEYS] for row in count_requests(count)]
        print(request_table(rows))
        failed = [problem for row in rows for problem in row["problems"]]
        for problem in failed:
            print(f"CHECK FAILED: {problem}", file=sys.stderr)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=2) + "\n")
        return 1 if failed else 0

    results = []
    for count in args.keys or DEFAULT_SIZES:
        with tempfile.TemporaryDirectory(prefix="hubkv-transfer-") as folder:
            results += measure(count, Path(folder))
    print(table(results))
    problems = [problem for r in results for problem in r["problems"]]
    for problem in problems:
        print(f"CHECK FAILED: {problem}", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
