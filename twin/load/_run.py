"""The conductor of `twin load`: start the hub (or use `--hub`), spread cars and apps over
worker processes, start them together, show progress, merge their results, judge thresholds.

Processes talk in lines: a worker prints `READY` once its cars and apps are connected,
`PROGRESS {json}` every interval, `RESULT {json}` as soon as its measured window is over and
`CLOSED {json}` once its links and sessions are closed; the conductor answers the last READY
with `GO <wall-clock start>` so every worker's open-loop schedule starts at the same instant
(first telling the embedded hub to `freeze`: its full collection of the garbage collector, the
connections made, falls before the window, not in it), and the last RESULT with `CLOSE`.

The end, in order: every RESULT in, the embedded hub's statistics are read (the run's figures
are final, every connection still held); on CLOSE the workers close everything together (the
generator starts each close handshake) and exit; the conductor waits until the hub has let go
of every connection, then stops it. The report so never depends on the close, and the hub is
never stopped with sockets its peers have closed but it has not.
"""

from __future__ import annotations

import contextlib
import json
import math
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
from ._procs import cpu_s, open_files_limit, rss_kb, stop, wait_for
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

__all__ = ["LoadOptions", "check_open_files", "hub_urls", "read_creds", "run_load", "select_fleet", "split_work", "spread"]


@attrs.frozen(kw_only=True)
class LoadOptions:
    cars: int | None = 100  # None (with `hub`): every car of the credentials file
    apps: int | None = 10  # None (with `hub`): every app of the credentials file
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


def hub_urls(hub: str) -> list[str]:
    """The hub URLs of `--hub`: one, or a comma-separated list of the nodes of one cluster."""
    urls = [u.strip() for u in hub.split(",") if u.strip()]
    bad = [u for u in urls if not u.startswith(("ws://", "wss://"))]
    if not urls or bad:
        raise ValueError(f"--hub takes ws:// URLs separated by commas, not {hub!r}")
    return urls


def select_fleet(creds: dict[str, Any], cars: int | None, apps: int | None) -> dict[str, Any]:
    """The part of a credentials file a run uses: its first `apps` apps and `cars` of their cars
    (None: all), taken round robin so that the cars stay spread over the apps. An app only
    commands the cars it keeps: a car nobody hosts would answer `offline`, an error."""
    have = creds["apps"][: len(creds["apps"]) if apps is None else apps]
    if apps is not None and len(have) < apps:
        raise ValueError(f"the credentials file holds {len(creds['apps'])} apps, not {apps}")
    pool = sum(len(e["cars"]) for e in have)
    want = pool if cars is None else cars
    if want > pool:
        raise ValueError(f"the first {len(have)} apps of the credentials file own {pool} cars, not {want}")
    kept: list[list[str]] = [[] for _ in have]
    taken, depth = 0, 0
    while taken < want:
        for i, entry in enumerate(have):
            if taken < want and depth < len(entry["cars"]):
                kept[i].append(entry["cars"][depth])
                taken += 1
        depth += 1
    chosen = [dict(entry, cars=mine) for entry, mine in zip(have, kept)]
    return {"apps": chosen, "cars": {c.removeprefix("car:"): creds["cars"][c.removeprefix("car:")] for e in chosen for c in e["cars"]}}


def read_creds(path: str | Path, cars: int | None = None, apps: int | None = None) -> dict[str, Any]:
    """`select_fleet` of the credentials file at `path`; ValueError (or OSError) saying what is wrong."""
    try:
        creds = json.loads(Path(path).read_text())
        return select_fleet(creds, cars, apps)
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path} is not a load credentials file (as `twin serve --load-fleet` writes): {exc!r}") from None
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def split_work(creds: dict[str, Any], workers: int, urls: list[str] | None = None) -> list[tuple[list[dict[str, Any]], list[list[str]]]]:
    """Spread the apps over `workers` (round robin), each with the cars it owns; every app is
    given the account of the next app to share with. With `urls` (the nodes of a cluster),
    app a connects to node a % N and its k-th car's link to node (a + 1 + k) % N, so that with
    two nodes or more a command usually crosses from the app's node to another; each app
    entry gets its "url", each car a third element, its link's url."""
    apps = creds["apps"]
    out = []
    for w in range(workers):
        mine: list[dict[str, Any]] = []
        cars: list[list[str]] = []
        for a in range(w, len(apps), workers):
            entry = dict(apps[a])
            entry["other"] = apps[(a + 1) % len(apps)].get("account", "")
            if urls:
                entry["url"] = urls[a % len(urls)]
            mine.append(entry)
            for k, c in enumerate(entry["cars"]):
                vid = c.removeprefix("car:")
                cars.append([vid, creds["cars"][vid]] + ([urls[(a + 1 + k) % len(urls)]] if urls else []))
        out.append((mine, cars))
    return out


def spread(urls: list[str], split: list[tuple[list[dict[str, Any]], list[list[str]]]]) -> dict[str, dict[str, int]]:
    """How many apps and cars `split_work` sent to each of `urls`: {url: {"apps": n, "cars": n}}."""
    counts = {url: {"apps": 0, "cars": 0} for url in urls}
    for apps, cars in split:
        for entry in apps:
            counts[entry.get("url", urls[0])]["apps"] += 1
        for car in cars:
            counts[car[2] if len(car) > 2 else urls[0]]["cars"] += 1
    return counts


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
            if word in ("PROGRESS", "RESULT", "CLOSED"):
                events.put((self.index, word, json.loads(rest)))
            elif word == "READY":
                events.put((self.index, word, None))
        events.put((self.index, "EXIT", self.proc.wait()))


#: A worker's phases in order; the display shows the earliest any worker is in (but "run" first).
_PHASES = ("run", "ramp", "ready", "closing", "closed")


class _Display:
    """Live progress: a rich panel on a terminal, else one plain line per interval."""

    def __init__(self, file: IO[str], live: bool | None, target_cars: int) -> None:
        self.file = file
        self.target_cars = target_cars
        self.live = None
        self.last: dict[int, dict[str, Any]] = {}
        self.t_before = self.t0 = time.monotonic()
        self.closing_since: float | None = None
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
        phase = min((p["phase"] for p in ps), key=_PHASES.index)
        if phase == "run":
            t = max((p["t"] or 0) for p in ps)
        elif phase in ("closing", "closed"):  # since the close began, not since the start
            self.closing_since = now if self.closing_since is None else self.closing_since
            t = now - self.closing_since
        else:
            t = now - self.t0
        cars = (f"cars {sum(p['cars'] for p in ps)}/{self.target_cars}" if phase not in ("closing", "closed")
                else f"cars still linked {sum(p.get('links', 0) for p in ps)}/{self.target_cars}")
        text = (f"[{phase} {t:5.1f}s] {cars}  apps {sum(p['apps'] for p in ps)}  "
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


#: File descriptors a load process needs besides its sockets: the store, pipes, threads, imports.
FD_SLACK = 256


def check_open_files(cars: int, apps: int, workers: int, *, embedded: bool) -> None:
    """Make sure the hub (`embedded`) and each worker may open a socket per car and app: raise
    the soft limit of open files where the hard limit allows (the processes started later
    inherit it); raise ValueError saying what to do where it does not."""
    workers = max(1, min(workers, apps))
    per_worker = FD_SLACK + -(-cars // workers) + -(-apps // workers)
    hub = FD_SLACK + cars + apps if embedded else 0
    needed = max(per_worker, hub)
    limit = open_files_limit(needed)
    if limit < needed:
        who, hint = ("the embedded hub", "") if hub >= per_worker else ("each worker", ", or use more --workers")
        raise ValueError(f"{cars} cars and {apps} apps need about {needed} open files in {who}, but the limit is {limit}: "
                         f"raise it (ulimit -n {needed}){hint}")


#: How long the workers may take to close, once every result is in, before they are stopped.
CLOSE_WAIT_S = 60.0


def _tell(workers: list[_Worker], line: str) -> None:
    """Write `line` to every worker's stdin (one that already exited says so with its EXIT)."""
    for w in workers:
        assert w.proc.stdin is not None
        with contextlib.suppress(OSError, ValueError):  # a broken pipe, or stdin already closed
            w.proc.stdin.write(line + "\n")
            w.proc.stdin.flush()


def _ask_hub(hub_proc: subprocess.Popen[str], word: str, answer: str) -> str:
    """Say `word` on the embedded hub process's stdin; its line starting with `answer`."""
    assert hub_proc.stdin is not None
    hub_proc.stdin.write(word + "\n")
    hub_proc.stdin.flush()
    return wait_for(hub_proc, answer)


def _hub_stats(hub_proc: subprocess.Popen[str]) -> dict[str, Any]:
    """`Hub.statistics()` of the embedded hub process."""
    return json.loads(_ask_hub(hub_proc, "stats", "STATS").split(" ", 1)[1])  # type: ignore[no-any-return]


def _wait_released(hub_proc: subprocess.Popen[str], timeout: float = 10.0) -> int:
    """Once the workers have closed: wait until the hub has let go of every app session and
    vehicle link (a peer's close is answered before the hub's handler has cleaned up); return
    how many it still held when `timeout` ran out (0: all released)."""
    end = time.monotonic() + timeout
    while True:
        s = _hub_stats(hub_proc)
        left = int(s["app_sessions"]) + int(s["vehicle_links"])
        if left == 0 or time.monotonic() >= end:
            return left
        time.sleep(0.05)


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
            if opts.cars is None or opts.apps is None:
                raise ValueError("an embedded hub needs the size of its fleet: cars and apps")
            check_open_files(opts.cars, opts.apps, opts.workers, embedded=True)
            cmd = [sys.executable, "-m", "twin.load._main", "hub", "--data", str(data), "--cars", str(opts.cars), "--apps", str(opts.apps)]
            if opts.hub_command_timeout is not None:
                cmd += ["--command-timeout", str(opts.hub_command_timeout)]
            hub_proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            procs.append(hub_proc)
            print(f"provisioning {opts.cars} cars and {opts.apps} app accounts in the embedded hub...", file=file, flush=True)
            url = f"ws://127.0.0.1:{wait_for(hub_proc, 'READY').split()[1]}/"
            urls = [url]
            creds = json.loads((data / "creds.json").read_text())
        else:
            if opts.creds is None:
                raise ValueError("--hub needs --creds FILE: the accounts and car secrets to use (the format the embedded hub writes)")
            url = opts.hub
            creds = read_creds(opts.creds, opts.cars, opts.apps)
            urls = hub_urls(opts.hub)
            check_open_files(len(creds["cars"]), len(creds["apps"]), opts.workers, embedded=False)
            print(f"loading {url} with {len(creds['cars'])} cars and {len(creds['apps'])} apps of {opts.creds}", file=file, flush=True)
        workers = max(1, min(opts.workers, len(creds["apps"]) or 1))
        rate = opts.rate if opts.rate is not None else opts.profile.rate_per_app * len(creds["apps"])
        events: queue.Queue[tuple[int, str, Any]] = queue.Queue()
        split = split_work(creds, workers, urls if len(urls) > 1 else None)
        nodes = spread(urls, split)
        if len(urls) > 1:
            print("spread over the nodes: " + ", ".join(f"{u} {n['apps']} apps, {n['cars']} cars" for u, n in nodes.items()),
                  file=file, flush=True)
        for w, (apps, cars) in enumerate(split):
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
        closed: dict[int, dict[str, Any]] = {}
        exited: set[int] = set()
        cpu_hub = 0.0
        hub_stats: dict[str, Any] | None = None
        hub_rss = 0
        measured: set[int] = set()
        next_tick = time.monotonic() + opts.interval
        close_deadline = math.inf
        started = False
        assert display is not None
        while len(exited) < workers and time.monotonic() < close_deadline:
            try:
                w, word, payload = events.get(timeout=max(0.0, min(next_tick, close_deadline) - time.monotonic()))
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
                    if hub_proc is not None:  # its full collection, after the connections and before the window
                        _ask_hub(hub_proc, "freeze", "FROZEN")
                    cpu_hub = cpu_s(hub_proc.pid) if hub_proc else 0.0
                    _tell(running, f"GO {time.time() + 0.1!r}")
            elif word == "RESULT":
                results[w] = payload
                if len(results) == workers:
                    close_deadline = time.monotonic() + CLOSE_WAIT_S
                    if hub_proc is not None:  # the run's figures are final; every connection is still held
                        hub_stats, hub_rss = _hub_stats(hub_proc), rss_kb(hub_proc.pid)
                    _tell(running, "CLOSE")
            elif word == "CLOSED":
                closed[w] = payload
            elif word == "EXIT":
                exited.add(w)
                if w not in results:
                    raise RuntimeError(f"load worker {w} exited ({payload}) without a result")
        display.tick()
        cpu_gen_proc = sum(r["cpu_s"] for r in results.values())
        duration = max(r["run_s"] for r in results.values())
        hub = None
        if hub_proc is not None:
            left = _wait_released(hub_proc)
            hub = {"hub_cpu_s": round(cpu_hub, 3), "hub_cpu_share": round(cpu_hub / duration, 2), "hub_rss_kb": hub_rss,
                   "hub_connections_left": left, "statistics": hub_stats}
        options = {"cars": len(creds["cars"]), "apps": len(creds["apps"]), "duration": opts.duration, "rate": rate, "workers": workers,
                   "spawn_rate": opts.spawn_rate, "hub": opts.hub or "embedded", "nodes": nodes, "timeout": opts.timeout, "seed": opts.seed,
                   "profile": opts.profile.to_plain()}
        report = build_report([results[w] for w in sorted(results)], options=options, hub=hub, interval=opts.interval)
        report["generator_cpu_share"] = round(cpu_gen_proc / duration, 2)
        report["generator_rss_kb"] = sum(r.get("rss_kb", 0) for r in results.values())
        report["cpu_cores"] = os.cpu_count()
        # how long the workers took to close every link and session (None: a worker did not say)
        report["close_s"] = max(c["close_s"] for c in closed.values()) if len(closed) == workers else None
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
