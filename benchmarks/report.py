"""Results out: the machine, medians and ratios, targets, markdown, JSON and charts.

Every number in the outputs is computed here from the raw samples kept in
the JSON, so the files can be rebuilt from ``results.json`` alone
(``python -m benchmarks --report-only DIR``).

A ratio is paired: for each repetition, a store's rate over raw sqlite3's
rate in the same repetition (they ran moments apart), then the median of
those, so a noisy moment on the machine shifts both sides alike.

>>> median_rate([{"ops": 10, "seconds": 1.0}, {"ops": 30, "seconds": 1.0}, {"ops": 20, "seconds": 1.0}])
20.0
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sqlite3
import statistics
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from .stores import HUBKV, RAW
from .workload import PHASES

__all__ = [
    "machine",
    "median_rate",
    "paired_ratio",
    "summarize",
    "targets",
    "markdown",
    "readme_section",
    "all_problems",
    "write",
]

#: One sample per repetition; ``None`` where the store failed in that repetition.
Samples = Sequence[Mapping[str, float] | None]

#: Phases where fs-lite must reach TARGET_RATIO x raw sqlite3.
TARGET_PHASES = (
    "set",
    "get",
    "has",
    "get_missing",
    "overwrite",
    "delete",
    "keys",
    "clear",
    "set_many",
)
TARGET_RATIO = 0.9
_PACKAGES = (
    "msgspec",
    "diskcache",
    "sqlitedict",
    "lmdb",
    "matplotlib",
    "redis",
    "upstash-redis",
    "cloudflare",
)


def machine(folder: Path) -> dict[str, Any]:
    """What the numbers were measured on."""
    info: dict[str, Any] = {
        "cpu": _cpuinfo("model name") or platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "os": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "sqlite": sqlite3.sqlite_version,
        "filesystem": _filesystem(folder),
        "packages": {},
    }
    for package in _PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            info["packages"][package] = metadata.version(package)
    return info


def _cpuinfo(field: str) -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            for line in file:
                if line.startswith(field):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return None


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as file:
            for line in file:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _filesystem(folder: Path) -> str | None:
    """The type of the filesystem holding ``folder`` (Linux), e.g. ``ext4``."""
    best, kind = "", None
    try:
        with open("/proc/mounts", encoding="utf-8") as file:
            for line in file:
                parts = line.split()
                mount = parts[1]
                if str(folder.resolve()).startswith(mount) and len(mount) > len(best):
                    best, kind = mount, parts[2]
    except OSError:
        pass
    return kind


# -- numbers ----------------------------------------------------------------


def _rate(sample: Mapping[str, float] | None) -> float | None:
    if sample is None or sample["seconds"] <= 0 or sample["ops"] <= 0:
        return None
    return sample["ops"] / sample["seconds"]


def _rates(samples: Samples) -> list[float]:
    return [rate for rate in map(_rate, samples) if rate is not None]


def median_rate(samples: Samples) -> float | None:
    """The median operations per second of ``samples`` (``None`` if there are none)."""
    rates = _rates(samples)
    return statistics.median(rates) if rates else None


def paired_ratio(samples: Samples, reference: Samples) -> float | None:
    """The median over repetitions of ``rate / reference rate`` (same repetition)."""
    ratios = []
    for sample, paired in zip(samples, reference, strict=True):
        rate, reference_rate = _rate(sample), _rate(paired)
        if rate is not None and reference_rate is not None:
            ratios.append(rate / reference_rate)
    return statistics.median(ratios) if ratios else None


def summarize(results: Mapping[str, Any]) -> dict[str, Any]:
    """Medians and ratios of every section present in ``results``."""
    summary: dict[str, Any] = {}
    if "phases" in results:
        table: dict[str, dict[str, dict[str, float | None]]] = {}
        for phase, per_store in results["phases"]["phases"].items():
            reference = per_store.get(RAW, [])
            table[phase] = {
                store: {
                    "median": median_rate(samples),
                    "vs_raw": paired_ratio(samples, reference),
                }
                for store, samples in per_store.items()
            }
        summary["phases"] = table
        summary["disk_bytes_per_key"] = {
            store: statistics.median(values) if values else None
            for store, values in results["phases"]["disk_bytes_per_key"].items()
        }
    if "concurrent" in results:
        summary["concurrent"] = {
            store: {
                "throughput": statistics.median(r["throughput"] for r in rounds),
                "errors": sum(r["errors"] for r in rounds),
                "lost": sum(r["lost"] for r in rounds),
                "writes": sum(r["writes"] for r in rounds),
                "first_error": next((r["first_error"] for r in rounds if r["first_error"]), None),
            }
            for store, rounds in results["concurrent"].items()
            if rounds
        }
    if "scaling" in results:
        summary["scaling"] = {
            phase: {
                store: {size: median_rate(samples) for size, samples in per_size.items()}
                for store, per_size in per_store.items()
            }
            for phase, per_store in results["scaling"]["phases"].items()
        }
    return summary


def targets(results: Mapping[str, Any], summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets: ``[{"target", "measured", "met"}]`` (``met`` None: not measured)."""
    rows: list[dict[str, Any]] = []
    labels = {phase.id: phase.label for phase in PHASES}
    table = summary.get("phases", {})
    for phase in TARGET_PHASES:
        ratio = table.get(phase, {}).get(HUBKV, {}).get("vs_raw")
        rows.append(
            {
                "target": f"{labels[phase]}: fs-lite >= {TARGET_RATIO}x raw sqlite3",
                "measured": None if ratio is None else f"{ratio:.2f}x",
                "met": None if ratio is None else ratio >= TARGET_RATIO,
            }
        )
    concurrent = summary.get("concurrent", {})
    if HUBKV in concurrent:
        mine, raw = concurrent[HUBKV], concurrent.get(RAW)
        rows.append(
            {
                "target": "4 writer processes: fs-lite has no errors and loses no key",
                "measured": f"{mine['errors']} errors, {mine['lost']} lost of {mine['writes']:,}",
                "met": mine["errors"] == 0 and mine["lost"] == 0,
            }
        )
        if raw:
            ratio = mine["throughput"] / raw["throughput"]
            rows.append(
                {
                    "target": "4 writer processes: fs-lite throughput >= raw sqlite3's",
                    "measured": f"{mine['throughput']:,.0f} vs {raw['throughput']:,.0f} writes/s"
                    f" ({ratio:.2f}x)",
                    "met": ratio >= 1.0,
                }
            )
    disk = summary.get("disk_bytes_per_key", {})
    if disk.get(HUBKV) and disk.get(RAW):
        ratio = disk[HUBKV] / disk[RAW]
        rows.append(
            {
                "target": "bytes per key on disk: fs-lite <= 1.2x raw sqlite3",
                "measured": f"{disk[HUBKV]:.0f} vs {disk[RAW]:.0f} ({ratio:.2f}x)",
                "met": ratio <= 1.2,
            }
        )
    scaling = summary.get("scaling", {}).get("keys10", {}).get(HUBKV)
    if scaling:
        largest = max(scaling, key=int)
        rate = scaling[largest]
        millis = 1000 / rate if rate else None
        rows.append(
            {
                "target": "keys(prefix) for 10 keys at 1M keys: fs-lite under 1 ms",
                "measured": None if millis is None else f"{millis:.3f} ms at {int(largest):,} keys",
                "met": None if millis is None or int(largest) < 1_000_000 else millis < 1.0,
            }
        )
    return rows


# -- markdown ---------------------------------------------------------------


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _short_size(count: int) -> str:
    return f"{count // 1_000_000}M" if count >= 1_000_000 else f"{count // 1000}k"


def _machine_line(results: Mapping[str, Any]) -> str:
    run, info = results["run"], results["machine"]
    return (
        f"`{run['command']}` on {run['date']}, {run['seconds']:.0f} s. "
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB, "
        f"{info['os']}, {info['python']}, SQLite {info['sqlite']}, files on "
        f"{info['filesystem'] or 'an unknown filesystem'}; load average "
        f"{run['load_before']} before, {run['load_after']} after (the machine is shared)."
    )


def _targets_table(results: Mapping[str, Any], summary: Mapping[str, Any]) -> list[str]:
    rows = targets(results, summary)
    if not rows:
        return []
    mark = {True: "yes", False: "**no**", None: "not measured"}
    lines = ["| target | measured | met |", "|---|---|---|"]
    lines += [f"| {r['target']} | {r['measured'] or '-'} | {mark[r['met']]} |" for r in rows]
    return [*lines, ""]


def markdown(results: Mapping[str, Any]) -> str:
    """The whole report as markdown."""
    summary = summarize(results)
    lines = ["# hubkv benchmarks", "", _machine_line(results), ""]
    if "phases" in summary:
        lines += _phases_table(results, summary)
    targets_table = _targets_table(results, summary)
    if targets_table:
        lines += ["## Targets", "", *targets_table]
    if "overhead" in results:
        lines += _overhead_table(results["overhead"])
    if "concurrent" in summary:
        lines += _concurrent_table(results, summary)
    if "scaling" in summary:
        lines += _scaling_table(results, summary)
    if "remote" in results:
        lines += _remote_table(results["remote"])
    problems = all_problems(results)
    lines += ["## Problems", ""]
    lines += [f"- {p}" for p in problems] if problems else ["None: every check passed."]
    lines.append("")
    return "\n".join(lines)


def readme_section(results: Mapping[str, Any], folder: str) -> str:
    """The README's summary: machine, main table, targets; images and details in ``folder``."""
    summary = summarize(results)
    lines = [_machine_line(results), ""]
    if "phases" in summary:
        lines += _phases_table(results, summary, images=folder + "/", level="###")
    lines += _targets_table(results, summary)
    if "overhead" in results:
        lines += _overhead_table(results["overhead"], level="###")
    if "scaling" in summary:
        lines += [f"![scaling]({folder}/scaling.png)", ""]
    lines.append(
        f"Every table (concurrent writers, scaling, remote drivers) and the raw samples: "
        f"[{folder}/results.md]({folder}/results.md), [{folder}/results.json]({folder}/results.json)."
    )
    return "\n".join(lines)


def all_problems(results: Mapping[str, Any]) -> list[str]:
    """Every failed check of every section."""
    problems: list[str] = []
    for section in ("phases", "scaling", "remote"):
        problems += results.get(section, {}).get("problems", [])
    for store, rounds in results.get("concurrent", {}).items():
        lost = sum(r["lost"] for r in rounds)
        if lost:
            problems.append(f"{store}: {lost} acknowledged writes lost by concurrent writers")
    return problems


def _phases_table(
    results: Mapping[str, Any], summary: Mapping[str, Any], images: str = "", level: str = "##"
) -> list[str]:
    sizes = results["run"]["sizes"]
    stores = results["run"]["stores"]
    lines = [
        f"{level} Operations per second, {sizes['keys']:,} keys",
        "",
        f"Median of {sizes['repetitions']} interleaved repetitions; in brackets the ratio to "
        "raw sqlite3 (paired by repetition). Values are small JSON dicts.",
        "",
        "| phase | unit | " + " | ".join(stores) + " |",
        "|---|---|" + "---:|" * len(stores),
    ]
    table = summary["phases"]
    for phase in PHASES:
        cells = []
        for store in stores:
            found = table.get(phase.id, {}).get(store)
            if not found or found["median"] is None:
                cells.append("n/a")
                continue
            cell = _number(found["median"])
            if store != RAW and found["vs_raw"] is not None:
                cell += f" ({found['vs_raw']:.2f}x)"
            cells.append(f"**{cell}**" if store == HUBKV else cell)
        lines.append(f"| {phase.label} | {phase.unit} | " + " | ".join(cells) + " |")
    disk = summary["disk_bytes_per_key"]
    cells = [_number(disk.get(store)) if store in disk else "n/a" for store in stores]
    lines.append("| bytes per key on disk | bytes | " + " | ".join(cells) + " |")
    lines += ["", f"![operations per second]({images}ops.png)", ""]
    return lines


def _overhead_table(overhead: Mapping[str, Any], level: str = "##") -> list[str]:
    lines = [
        f"{level} Where fs-lite's time goes",
        "",
        "The same random reads through one more layer of hubkv at a time (see "
        "`benchmarks/overhead.py`); median ns per call, and what each layer adds.",
        "",
    ]
    for operation, rows in overhead.items():
        lines += [f"| {operation} | ns per call | added |", "|---|---:|---:|"]
        previous = None
        for row in rows:
            added = "" if previous is None else f"{row['ns'] - previous:+,.0f}"
            lines.append(f"| {row['layer']} | {row['ns']:,.0f} | {added} |")
            previous = row["ns"]
        lines.append("")
    return lines


def _concurrent_table(results: Mapping[str, Any], summary: Mapping[str, Any]) -> list[str]:
    run = results["run"]
    raw = summary["concurrent"].get(RAW, {}).get("throughput")
    lines = [
        f"## {run['writers']} processes writing at once",
        "",
        f"Each process sets {run['writes_per_writer']:,} keys of its own; median of "
        f"{run['rounds']} rounds.",
        "",
        "| store | writes/s | vs raw sqlite3 | errors | lost keys | first error |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for store, row in summary["concurrent"].items():
        ratio = f"{row['throughput'] / raw:.2f}x" if raw else "-"
        error = (row["first_error"] or "")[:80].replace("|", "/")
        lines.append(
            f"| {store} | {_number(row['throughput'])} | {ratio} | {row['errors']} "
            f"| {row['lost']} | {error} |"
        )
    lines.append("")
    return lines


def _scaling_table(results: Mapping[str, Any], summary: Mapping[str, Any]) -> list[str]:
    from .scaling import SCALING_PHASES

    sizes = results["scaling"]["sizes"]
    head = " | ".join(_short_size(size) for size in sizes)
    lines = [
        "## Scaling",
        "",
        "The same operations on stores of growing size (median of "
        f"{results['run']['scaling_repetitions']}).",
        "",
        f"| phase | store | {head} |",
        "|---|---|" + "---:|" * len(sizes),
    ]
    for phase, (label, unit) in SCALING_PHASES.items():
        for store, per_size in summary["scaling"][phase].items():
            cells = " | ".join(_number(per_size.get(str(size))) for size in sizes)
            lines.append(f"| {label} ({unit}) | {store} | {cells} |")
    for store, per_size in results["scaling"]["disk_bytes_per_key"].items():
        cells = " | ".join(_number(per_size.get(str(size))) for size in sizes)
        lines.append(f"| bytes per key on disk | {store} | {cells} |")
    lines += ["", "![scaling](scaling.png)", ""]
    return lines


def _remote_table(remote: Mapping[str, Any]) -> list[str]:
    rows = remote.get("rows", [])
    lines = [
        "## Remote drivers against local stand-ins",
        "",
        f"hubkv's driver and the official client make the same calls on the same server, taking "
        f"turns; median of {remote.get('calls', '?')} calls each. Requests per call as counted "
        "by the server (for Redis: commands; one round trip may carry several).",
        "",
    ]
    if not rows:
        return [*lines, "Not measured (see Problems).", ""]
    pairs: dict[tuple[str, str], dict[str, Mapping[str, Any]]] = {}
    for row in rows:
        pairs.setdefault((row["service"], row["operation"]), {})[row["client"]] = row
    lines += [
        "| service | operation | official client | hubkv ms | official ms | hubkv requests "
        "| official requests |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for (service, operation), clients in pairs.items():
        mine = clients.get("hubkv")
        theirs = next((row for client, row in clients.items() if client != "hubkv"), None)
        if mine is None or theirs is None:
            continue
        lines.append(
            f"| {service} | {operation} | {theirs['client']} | {mine['ms']:.2f} | "
            f"{theirs['ms']:.2f} | {mine['requests']:.3g} | {theirs['requests']:.3g} |"
        )
    return [*lines, ""]


# -- files ------------------------------------------------------------------


def write(results: Mapping[str, Any], folder: Path) -> list[Path]:
    """``results.json``, ``results.md`` and the charts into ``folder``; their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / "results.json", folder / "results.md"]
    written[0].write_text(json.dumps(results, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    written[1].write_text(markdown(results), encoding="utf-8")
    from .charts import draw

    written += draw(results, summarize(results), folder)
    return written
