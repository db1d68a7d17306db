"""The report of a load run: merging worker results, thresholds, and the files a person reads
(JSON, CSV, an SVG plot of latency over time, the final table)."""

from __future__ import annotations

import csv
import json
import math
import re
from collections import Counter
from pathlib import Path
from typing import IO, Any

import attrs

from ._hist import merge, summary

__all__ = ["Threshold", "build_report", "check_thresholds", "format_table", "parse_threshold", "write_csv", "write_json", "write_svg"]


def _add(counters: list[dict[str, int]]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for c in counters:
        total.update(c)
    return dict(sorted(total.items(), key=lambda kv: (-kv[1], kv[0])))


def build_report(results: list[dict[str, Any]], *, options: dict[str, Any], hub: dict[str, Any] | None = None,
                 interval: float = 1.0) -> dict[str, Any]:
    """Merge the workers' results (histograms added exactly) into the report."""
    latency = merge(r["latency"] for r in results)
    alerts = merge(r["alerts"] for r in results)
    lag = merge(r["send_lag"] for r in results)
    run_s = max((r["run_s"] for r in results), default=0.0) or 1e-9
    all_ = summary(latency)
    al = summary(alerts)
    errors = _add([r["errors"] for r in results])
    completed = sum(r["done"] for r in results)
    n_errors = sum(errors.values())
    names = sorted({n for r in results for n in r["commands"]})
    per_command = {}
    for name in names:
        s = summary(merge(r["commands"][name] for r in results if name in r["commands"]))
        s["per_s"] = round(s["count"] / run_s, 1)
        per_command[name] = s
    buckets: dict[int, list[dict[str, Any]]] = {}
    for r in results:
        for entry in r["timeline"]:
            buckets.setdefault(max(1, round(entry["t"] / interval)), []).append(entry)
    timeline = []
    for k in sorted(buckets):
        s = summary(merge(e["hist"] for e in buckets[k]))
        timeline.append({"t": round(k * interval, 3), "count": s["count"], "per_s": round(s["count"] / interval, 1),
                         "p50_ms": s["p50_ms"], "p99_ms": s["p99_ms"], "max_ms": s["max_ms"],
                         "errors": sum(e["errors"] for e in buckets[k])})
    report: dict[str, Any] = {
        "cars": sum(r["cars"] for r in results),
        "apps": sum(r["apps"] for r in results),
        "workers": len(results),
        "duration_s": round(run_s, 3),
        "target_rate_per_s": options.get("rate"),
        "arrivals": sum(r["arrivals"] for r in results),
        "commands": sum(r["sent"] for r in results),
        "completed": completed,
        "commands_per_s": round(completed / run_s, 1),
        "p50_ms": all_["p50_ms"], "p90_ms": all_["p90_ms"], "p99_ms": all_["p99_ms"], "p999_ms": all_["p999_ms"],
        "max_ms": all_["max_ms"], "mean_ms": all_["mean_ms"],
        "errors": n_errors,
        "error_rate": round(n_errors / completed, 6) if completed else 0.0,
        "errors_by_code": errors,
        "refused_by_code": _add([r["refused"] for r in results]),
        "outcomes": _add([r["outcomes"] for r in results]),
        "per_command": per_command,
        "alerts": al["count"],
        "alert_p50_ms": al["p50_ms"], "alert_p99_ms": al["p99_ms"], "alert_max_ms": al["max_ms"],
        "alerts_by_type": _add([r["alert_types"] for r in results]),
        "car_events": sum(r["events"] for r in results),
        "car_event_failures": sum(r["event_failures"] for r in results),
        "car_failures": _add([r["car_failures"] for r in results]),
        "app_failures": _add([r["app_failures"] for r in results]),
        "send_lag_p99_ms": summary(lag)["p99_ms"],
        "generator_cpu_s": round(sum(r["cpu_s"] for r in results), 3),
        "timeline": timeline,
        "options": options,
    }
    if hub is not None:
        report.update({k: v for k, v in hub.items() if k.startswith("hub_")})
        report["hub"] = hub.get("statistics")
    return report


# --- thresholds


@attrs.frozen
class Threshold:
    """`p99<100ms`, `errors<0.1%`, `commands_per_s>=500`, `alert_p99<2s`: metric, operator, limit."""

    text: str
    metric: str
    op: str
    value: float
    percent: bool = False

    def actual(self, report: dict[str, Any]) -> float | None:
        if self.metric == "errors":
            return report["error_rate"] * 100 if self.percent else float(report["errors"])
        value = report.get(self.metric)
        return None if value is None else float(value)

    def holds(self, report: dict[str, Any]) -> bool:
        actual = self.actual(report)
        if actual is None:
            return False
        return {"<": actual < self.value, "<=": actual <= self.value, ">": actual > self.value, ">=": actual >= self.value}[self.op]


_THRESHOLD = re.compile(r"^\s*([a-z0-9_.]+)\s*(<=|>=|<|>)\s*([0-9.]+(?:e-?[0-9]+)?)\s*(ms|s|us|%|/s)?\s*$")
_ALIASES = {"p50": "p50_ms", "p90": "p90_ms", "p99": "p99_ms", "p99.9": "p999_ms", "p999": "p999_ms", "max": "max_ms",
            "mean": "mean_ms", "alert_p50": "alert_p50_ms", "alert_p99": "alert_p99_ms", "alert_max": "alert_max_ms",
            "throughput": "commands_per_s", "rps": "commands_per_s", "error_rate": "errors"}


def parse_threshold(text: str) -> Threshold:
    """Parse `METRIC OP NUMBER[UNIT]`; raise ValueError saying what is accepted."""
    m = _THRESHOLD.match(text)
    if not m:
        raise ValueError(f"cannot read the threshold {text!r}: write METRIC<LIMIT such as 'p99<100ms', 'errors<0.1%', 'commands_per_s>=500'")
    metric, op, number, unit = m.group(1), m.group(2), float(m.group(3)), m.group(4)
    metric = _ALIASES.get(metric, metric)
    timed = metric.endswith("_ms")
    if timed:
        number *= {"s": 1000.0, "us": 0.001, "ms": 1.0, None: 1.0}.get(unit, float("nan"))
        if math.isnan(number):
            raise ValueError(f"{text!r}: a latency takes ms, s or us")
    elif unit == "%" and metric != "errors":
        raise ValueError(f"{text!r}: only errors take a percentage")
    elif unit in ("ms", "s", "us"):
        raise ValueError(f"{text!r}: {metric} is not a latency")
    known = {"p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms", "mean_ms", "alert_p50_ms", "alert_p99_ms", "alert_max_ms",
             "errors", "commands_per_s", "alerts", "cars", "apps"}
    if metric not in known:
        raise ValueError(f"{text!r}: unknown metric {metric!r}; known: {', '.join(sorted(known | set(_ALIASES)))}")
    return Threshold(text.strip(), metric, op, number, percent=unit == "%")


def check_thresholds(report: dict[str, Any], thresholds: list[Threshold]) -> list[str]:
    """The failed thresholds, each as a sentence (empty when all hold)."""
    failed = []
    for t in thresholds:
        if not t.holds(report):
            actual = t.actual(report)
            shown = "nothing measured" if actual is None else f"{actual:.4g}{'%' if t.percent else ''}"
            failed.append(f"{t.text}: measured {shown}")
    return failed


# --- files


def write_json(report: dict[str, Any], path: str | Path) -> None:
    Path(path).write_text(json.dumps(report, indent=2) + "\n")


CSV_FIELDS = ("name", "count", "per_s", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms", "mean_ms")


def write_csv(report: dict[str, Any], path: str | Path) -> None:
    """One row per command, one for all commands, one for alerts, then one per error code."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_FIELDS)
        for name, s in report["per_command"].items():
            w.writerow([name, *(s.get(k) for k in CSV_FIELDS[1:])])
        w.writerow(["all", report["completed"], report["commands_per_s"], *(report.get(k) for k in CSV_FIELDS[3:])])
        w.writerow(["alerts", report["alerts"], "", report["alert_p50_ms"], "", report["alert_p99_ms"], "", report["alert_max_ms"], ""])
        w.writerow([])
        w.writerow(["error", "count"])
        for code, n in report["errors_by_code"].items():
            w.writerow([code, n])


def write_svg(report: dict[str, Any], path: str | Path) -> None:
    """Latency over time (p50, p99, max per interval, log scale) above throughput: a plain SVG."""
    tl = report["timeline"]
    W, H, L, R, T = 900, 520, 70, 20, 30
    top_h, bottom_h, gap = 300, 110, 50
    t_max = max((e["t"] for e in tl), default=1.0) or 1.0
    lat = [v for e in tl for v in (e["p50_ms"], e["p99_ms"], e["max_ms"]) if v]
    lo = math.floor(math.log10(min(lat))) if lat else 0
    hi = math.ceil(math.log10(max(lat))) if lat else 1
    hi = max(hi, lo + 1)

    def x(t: float) -> float:
        return L + (W - L - R) * t / t_max

    def y_lat(v: float) -> float:
        return T + top_h * (1 - (math.log10(v) - lo) / (hi - lo))

    peak = max((e["per_s"] for e in tl), default=1.0) or 1.0
    y0 = T + top_h + gap

    def y_rate(v: float) -> float:
        return y0 + bottom_h * (1 - v / peak)

    title = (f'<text x="{L}" y="18" font-size="14">twin load: {report["cars"]} cars, {report["apps"]} apps, '
             f'{report["commands_per_s"]} commands/s, p99 {report["p99_ms"]} ms, {report["errors"]} errors</text>')
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>', title]
    for d in range(lo, hi + 1):
        yy = y_lat(10 ** d)
        out.append(f'<line x1="{L}" x2="{W - R}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{L - 6}" y="{yy + 4:.1f}" text-anchor="end">{10 ** d:g} ms</text>')
    for name, key, color in (("p50", "p50_ms", "#2a7"), ("p99", "p99_ms", "#e80"), ("max", "max_ms", "#c22")):
        pts = " ".join(f"{x(e['t']):.1f},{y_lat(e[key]):.1f}" for e in tl if e[key])
        out.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{pts}"/>')
    for i, (name, color) in enumerate((("p50", "#2a7"), ("p99", "#e80"), ("max", "#c22"))):
        out.append(f'<text x="{W - R - 150 + 50 * i}" y="{T + 14}" fill="{color}">{name}</text>')
    out.append(f'<line x1="{L}" x2="{W - R}" y1="{y0 + bottom_h}" y2="{y0 + bottom_h}" stroke="#999"/>')
    out.append(f'<text x="{L - 6}" y="{y0 + 4}" text-anchor="end">{peak:g}/s</text>')
    pts = " ".join(f"{x(e['t']):.1f},{y_rate(e['per_s']):.1f}" for e in tl)
    out.append(f'<polyline fill="none" stroke="#36c" stroke-width="2" points="{pts}"/>')
    errs = [e for e in tl if e["errors"]]
    for e in errs:
        out.append(f'<circle cx="{x(e["t"]):.1f}" cy="{y0 + bottom_h:.1f}" r="3" fill="#c22"><title>{e["errors"]} errors</title></circle>')
    out.append(f'<text x="{L}" y="{y0 - 8}">completed commands per second (red dots: intervals with errors)</text>')
    out.append(f'<text x="{(L + W - R) / 2}" y="{H - 8}" text-anchor="middle">seconds since start ({t_max:g} s)</text>')
    out.append("</svg>")
    Path(path).write_text("\n".join(out) + "\n")


def format_table(report: dict[str, Any], file: IO[str]) -> None:
    """The final table: per command, all, alerts; then errors and CPU."""
    rows = [(n, s) for n, s in report["per_command"].items()]
    rows.append(("all", {"count": report["completed"], "per_s": report["commands_per_s"],
                         **{k: report[k] for k in ("p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms")}}))
    rows.append(("alerts (event->app)", {"count": report["alerts"], "per_s": None, "p50_ms": report["alert_p50_ms"],
                                         "p99_ms": report["alert_p99_ms"], "max_ms": report["alert_max_ms"]}))
    heads = ("", "count", "per s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms")
    keys = ("count", "per_s", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms")

    def cell(v: Any) -> str:
        return "-" if v is None else (f"{v:,}" if isinstance(v, int) else f"{v:,.1f}" if isinstance(v, float) and v >= 100 else f"{v}")

    lines = []
    try:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"twin load: {report['cars']} cars, {report['apps']} apps, {report['workers']} worker(s), {report['duration_s']} s")
        for h in heads:
            table.add_column(h, justify="right" if h else "left")
        for name, s in rows:
            table.add_row(name, *(cell(s.get(k)) for k in keys))
        Console(file=file, width=110).print(table)
    except ImportError:  # pragma: no cover - rich is a dependency
        lines.append("  ".join(f"{h:>10}" for h in heads))
        for name, s in rows:
            lines.append("  ".join([f"{name:>10}", *(f"{cell(s.get(k)):>10}" for k in keys)]))
    errs = ", ".join(f"{c} {n}" for c, n in report["errors_by_code"].items()) or "none"
    refused = ", ".join(f"{c} {n}" for c, n in report["refused_by_code"].items()) or "none"
    lines.append(f"errors: {report['errors']} ({report['error_rate'] * 100:.3f}%): {errs}")
    lines.append(f"refused by the cars' rules (not errors): {refused}")
    lines.append(f"car events: {report['car_events']}, alerts received: {report['alerts']} {report['alerts_by_type'] or ''}")
    cpu = f"generator CPU {report['generator_cpu_s']} s"
    if "hub_cpu_s" in report:
        cpu += f", hub CPU {report['hub_cpu_s']} s ({report.get('hub_cpu_share')} of a core)"
    lines.append(cpu + f"; send lag p99 {report['send_lag_p99_ms']} ms")
    memory = [f"{who} {report[key] / 1024:,.0f} MB" for who, key in (("generator", "generator_rss_kb"), ("hub", "hub_rss_kb"))
              if report.get(key)]
    closing = [f"links and sessions closed in {report['close_s']} s"] if report.get("close_s") is not None else []
    if report.get("hub_connections_left"):
        closing.append(f"the hub still held {report['hub_connections_left']} connection(s) afterwards")
    if memory or closing:
        lines.append("; ".join(([f"memory (RSS at the end of the window): {', '.join(memory)}"] if memory else []) + closing))
    for line in lines:
        print(line, file=file)
