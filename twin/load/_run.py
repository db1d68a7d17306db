"""The conductor of `twin load`: start the hub (or use `--hub`), spread cars and apps over
worker processes, start them together, show progress, merge their results, judge thresholds.

Processes talk in lines: a worker prints `READY` once its cars and apps are connected,
`PROGRESS {json}` every interval and `RESULT {json}` at the end; the conductor answers READY
with `GO <wall-clock start>` so every worker's open-loop schedule starts at the same instant.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

import attrs

from ._hist import merge, summary
from ._procs import cpu_s, stop, wait_for
from ._profile import DEFAULT_PROFILE, Profile
from ._report import (
    Threshold,
    build_report,
    check_thresholds,
    format_table,
    write_csv,
    write_json,
    write_svg,
)

__all__ = ["LoadOptions", "run_load", "split_work"]


@attrs.frozen(kw_only=True)
class LoadOptions:
    cars: int = 100
    apps: int = 10
    duration: float = 10.0
    rate: float | None = None  # commands/s in all; None: profile.rate_per_app * apps
    spawn_rate: float = 500.0  # car connections per second, in all
    workers: int = 1
    hub: str | None = None  # ws://... of a running hub; None: an embedded hub process
    creds: str | None = None  # credentials file for --hub (the format the embedded hub writes)
    profile: Profile = DEFAULT_PROFILE
    timeout: float = 5.0
    seed: int = 0
    interval: float = 1.0
    hub_command_timeout: float | None = None


def split_work(creds: dict[str, Any], workers: int) -> list[tuple[list[dict[str, Any]], list[list[str]]]]:
    """Spread the apps over `workers` (round robin), each with the cars it owns; every app is
    given the account of the next app to share with."""
    apps = creds["apps"]
    out = []
    for w in range(workers):
        mine: list[dict[str, Any]] = []
        cars: list[list[str]] = []
        for a in range(w, len(apps), workers):
            entry = dict(apps[a])
            entry["other"] = apps[(a + 1) % len(apps)].get("account", "")
            mine.append(entry)
            cars.extend([c.removeprefix("car:"), creds["cars"][c.removeprefix("car:")]] for c in entry["cars"])
        out.append((mine, cars))
    return out


class _Worker:
    def __init__(self, proc: subprocess.Popen[str], events: queue.Queue[tuple[int, str, Any]], index: int) -> None:
        self.proc = proc
        self.index = index
        self.thread = threading.Thread(target=self._read, args=(events,), daemon=True)
        self.thread.start()

    def _read(self, events: queue.Queue[tuple[int, str, Any]]) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            word, _, rest = line.strip().partition(" ")
            if word in ("PROGRESS", "RESULT"):
                events.put((self.index, word, json.loads(rest)))
            elif word == "READY":
                events.put((self.index, word, None))
        events.put((self.index, "EXIT", self.proc.wait()))


class _Display:
    """Live progress: a rich panel on a terminal, else one plain line per interval."""

    def __init__(self, file: IO[str], live: bool | None, target_cars: int) -> None:
        self.file = file
        self.target_cars = target_cars
        self.live = None
        self.last: dict[int, dict[str, Any]] = {}
        self.t_before = self.t0 = time.monotonic()
        if live is None:
            live = file.isatty()
        if live:
            from rich.console import Console
            from rich.live import Live

            self.live = Live("starting...", console=Console(file=file), refresh_per_second=4, transient=False)
            self.live.start()

    def update(self, worker: int, p: dict[str, Any]) -> None:
        self.last[worker] = p

    def tick(self) -> None:
        if not self.last:
            return
        ps = list(self.last.values())
        now = time.monotonic()
        inter = [p.pop("interval")["hist"] for p in ps if "interval" in p]
        s: dict[str, Any] = summary(merge(inter)) if inter else {"count": 0, "p99_ms": None}
        rate = s["count"] / max(1e-9, now - self.t_before)
        self.t_before = now
        p99 = s["p99_ms"]
        phases = {p["phase"] for p in ps}
        phase = "run" if "run" in phases else min(phases)
        t = max((p["t"] or 0) for p in ps) if phase == "run" else now - self.t0
        text = (f"[{phase} {t:5.1f}s] cars {sum(p['cars'] for p in ps)}/{self.target_cars}  apps {sum(p['apps'] for p in ps)}  "
                f"commands/s {rate:,.0f}  p99 {'-' if p99 is None else f'{p99:.1f} ms'}  errors {sum(p['errors'] for p in ps)}  "
                f"in flight {sum(p['in_flight'] for p in ps)}  alerts {sum(p['alerts'] for p in ps)}")
        if self.live is not None:
            from rich.text import Text

            self.live.update(Text(text))  # plain text: "[run 3.0s]" is not markup
        else:
            print(text, file=self.file, flush=True)

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()


def run_load(opts: LoadOptions, *, file: IO[str] | None = None, live: bool | None = None) -> dict[str, Any]:
    """Run the load as `opts` says and return the report (thresholds are the caller's)."""
    file = sys.stderr if file is None else file
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    data = Path(tempfile.mkdtemp(prefix="twin-load-", dir=base))
    procs: list[subprocess.Popen[str]] = []
    hub_proc: subprocess.Popen[str] | None = None
    display = None
    running: list[_Worker] = []
    try:
        if opts.hub is None:
            cmd = [sys.executable, "-m", "twin.load._main", "hub", "--data", str(data), "--cars", str(opts.cars), "--apps", str(opts.apps)]
            if opts.hub_command_timeout is not None:
                cmd += ["--command-timeout", str(opts.hub_command_timeout)]
            hub_proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            procs.append(hub_proc)
            print(f"provisioning {opts.cars} cars and {opts.apps} app accounts in the embedded hub...", file=file, flush=True)
            url = f"ws://127.0.0.1:{wait_for(hub_proc, 'READY').split()[1]}/"
            creds = json.loads((data / "creds.json").read_text())
        else:
            if opts.creds is None:
                raise ValueError("--hub needs --creds FILE: the accounts and car secrets to use (the format the embedded hub writes)")
            url = opts.hub
            creds = json.loads(Path(opts.creds).read_text())
        workers = max(1, min(opts.workers, len(creds["apps"]) or 1))
        rate = opts.rate if opts.rate is not None else opts.profile.rate_per_app * len(creds["apps"])
        events: queue.Queue[tuple[int, str, Any]] = queue.Queue()
        for w, (apps, cars) in enumerate(split_work(creds, workers)):
            spec = {"url": url, "apps": apps, "cars": cars, "rate": rate * len(apps) / max(1, len(creds["apps"])),
                    "duration": opts.duration, "spawn_rate": opts.spawn_rate / workers, "profile": opts.profile.to_plain(),
                    "timeout": opts.timeout, "seed": opts.seed * 1000 + w, "interval": opts.interval}
            path = data / f"worker{w}.json"
            path.write_text(json.dumps(spec))
            proc = subprocess.Popen([sys.executable, "-m", "twin.load._main", "worker", str(path)], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, text=True)
            procs.append(proc)
            running.append(_Worker(proc, events, w))
        display = _Display(file, live, len(creds["cars"]))
        ready: set[int] = set()
        results: dict[int, dict[str, Any]] = {}
        cpu_hub = 0.0
        measured: set[int] = set()
        next_tick = time.monotonic() + opts.interval
        started = False
        assert display is not None
        while len(results) < workers:
            try:
                w, word, payload = events.get(timeout=max(0.0, next_tick - time.monotonic()))
            except queue.Empty:
                display.tick()
                next_tick += opts.interval
                continue
            if word == "PROGRESS":
                display.update(w, payload)
                if payload["phase"] == "closing" and w not in measured:
                    measured.add(w)
                    if len(measured) == workers:  # the measured window ends before the closes
                        cpu_hub = (cpu_s(hub_proc.pid) if hub_proc else 0.0) - cpu_hub
            elif word == "READY":
                ready.add(w)
                if len(ready) == workers and not started:
                    started = True
                    cpu_hub = cpu_s(hub_proc.pid) if hub_proc else 0.0
                    go = f"GO {time.time() + 0.1!r}\n"
                    for p in running:
                        assert p.proc.stdin is not None
                        p.proc.stdin.write(go)
                        p.proc.stdin.flush()
            elif word == "RESULT":
                results[w] = payload
            elif word == "EXIT" and w not in results:
                raise RuntimeError(f"load worker {w} exited ({payload}) without a result")
        display.tick()
        cpu_gen_proc = sum(r["cpu_s"] for r in results.values())
        hub_stats: dict[str, Any] | None = None
        if hub_proc is not None:
            assert hub_proc.stdin is not None
            for p in running:
                p.proc.wait(timeout=60)
            hub_proc.stdin.write("stats\n")
            hub_proc.stdin.flush()
            hub_stats = json.loads(wait_for(hub_proc, "STATS").split(" ", 1)[1])
        duration = max(r["run_s"] for r in results.values())
        hub = None
        if hub_proc is not None:
            hub = {"hub_cpu_s": round(cpu_hub, 3), "hub_cpu_share": round(cpu_hub / duration, 2),
                   "statistics": hub_stats}
        options = {"cars": opts.cars, "apps": opts.apps, "duration": opts.duration, "rate": rate, "workers": workers,
                   "spawn_rate": opts.spawn_rate, "hub": opts.hub or "embedded", "timeout": opts.timeout, "seed": opts.seed,
                   "profile": opts.profile.to_plain()}
        report = build_report([results[w] for w in sorted(results)], options=options, hub=hub, interval=opts.interval)
        report["generator_cpu_share"] = round(cpu_gen_proc / duration, 2)
        report["cpu_cores"] = os.cpu_count()
        return report
    finally:
        if display is not None:
            display.close()
        stop(*procs, close_pipes=False)
        for p in running:
            p.thread.join(timeout=5)
        for proc in procs:
            if proc.stdout is not None:
                proc.stdout.close()
        shutil.rmtree(data, ignore_errors=True)


def load_main(opts: LoadOptions, *, thresholds: list[Threshold], json_path: str | None, csv_path: str | None,
              plot_path: str | None, live: bool | None = None) -> int:
    """`twin load`: run, print the table, write the files, exit 1 if a threshold fails."""
    report = run_load(opts, live=live)
    failed = check_thresholds(report, thresholds)
    report["thresholds"] = {"checked": [t.text for t in thresholds], "failed": failed}
    format_table(report, sys.stdout)
    if json_path:
        write_json(report, json_path)
    if csv_path:
        write_csv(report, csv_path)
    if plot_path:
        write_svg(report, plot_path)
    for line in failed:
        print(f"threshold failed: {line}", file=sys.stderr)
    if thresholds and not failed:
        print(f"thresholds hold: {', '.join(t.text for t in thresholds)}", file=sys.stderr)
    return 1 if failed else 0
