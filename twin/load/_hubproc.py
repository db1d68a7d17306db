"""The embedded hub of `twin load` (and `bench/hub.py`), run in its own process:

    python -m twin.load._main hub --data DIR --cars N --apps M

It opens (or creates) `DIR/hub.sqlite3`, provisions `apps` accounts owning `cars` linked cars
between them (car `b<n>`, account `app<a>@load`), writes their credentials to
`DIR/creds.json`, prints `READY <port>`, then serves. A line `stats` on stdin prints
`STATS <json of Hub.statistics()>`; closing stdin prints the statistics once more and shuts
the hub down gracefully.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import attrs
import trio

from ._procs import tune_gc

__all__ = ["LOAD_HUB_CONFIG", "provision"]

#: Limits opened up for load: the generator, not the hub's rate limiter, decides the rate.
LOAD_HUB_CONFIG: dict[str, Any] = {"rate_per_s": 1e6, "burst": 1e6, "link_rate_per_s": 1e6, "link_burst": 1e6,
                                   "send_queue": 4096, "idle": None, "command_timeout": 10.0}


async def provision(hub: Any, store: Any, cars: int, apps: int) -> dict[str, Any]:
    """Create `apps` accounts and `cars` linked cars spread evenly over them; return the
    credentials: {"apps": [{"account", "token", "cars": ["car:b0", ...]}], "cars": {vid: secret}}."""
    from twin.model import new_vehicle
    from twin.protocol import Plan, Powertrain

    creds: dict[str, Any] = {"apps": [], "cars": {}}
    per_app = max(1, cars // max(1, apps))
    plans, powertrains = list(Plan), list(Powertrain)
    for a in range(apps):
        account = await hub.create_account(f"app{a}@load", "pw")
        token = await trio.to_thread.run_sync(store.issue_token, account)
        first = a * per_app
        last = cars if a == apps - 1 else min(first + per_app, cars)
        names = [f"b{n}" for n in range(first, last)]
        states = [new_vehicle(c, owner=account, plan=plans[n % 2], powertrain=powertrains[n % 4]) for n, c in enumerate(names)]
        secrets = await hub.add_cars(states, linked=True)
        creds["apps"].append({"account": account, "token": token, "cars": ["car:" + c for c in names]})
        creds["cars"].update(zip(names, secrets))
    return creds


async def serve(data: Path, cars: int, apps: int, config: dict[str, Any] | None = None) -> None:
    """Provision (if the creds file is missing), print READY, serve until stdin closes."""
    from twin.server import HubConfig, serve_hub
    from twin.store import Store

    store = Store.open(data / "hub.sqlite3")
    try:
        async with trio.open_nursery() as nursery:
            hub = await nursery.start(serve_hub, store, HubConfig(port=0, **(config or LOAD_HUB_CONFIG)))
            creds_path = data / "creds.json"
            if not creds_path.exists():
                creds = await provision(hub, store, cars, apps)
                await hub.settle()
                creds_path.write_text(json.dumps(creds))
            tune_gc()
            print(f"READY {hub.port}", flush=True)

            def stats() -> None:
                print("STATS " + json.dumps(attrs.asdict(hub.statistics())), flush=True)

            while True:
                line = await trio.to_thread.run_sync(sys.stdin.readline)
                if not line:
                    break
                if line.strip() == "stats":
                    stats()
            stats()
            hub.shutdown()
    finally:
        store.close()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m twin.load._main hub", description=__doc__)
    parser.add_argument("--data", required=True)
    parser.add_argument("--cars", type=int, required=True)
    parser.add_argument("--apps", type=int, required=True)
    parser.add_argument("--command-timeout", type=float, default=None)
    args = parser.parse_args(argv)
    config = dict(LOAD_HUB_CONFIG)
    if args.command_timeout is not None:
        config["command_timeout"] = args.command_timeout
    trio.run(serve, Path(args.data), args.cars, args.apps, config)

