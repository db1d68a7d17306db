"""The embedded hub of `twin load` (and `bench/hub.py`), run in its own process:

    python -m twin.load._main hub --data DIR --cars N --apps M

It opens (or creates) `DIR/hub.sqlite3`, provisions `apps` accounts owning `cars` linked cars
between them (car `b<n>`, account `app<a>@load`), writes their credentials to
`DIR/creds.json`, prints `READY <port>`, then serves. A line `stats` on stdin prints
`STATS <json of Hub.statistics()>`; closing stdin prints the statistics once more and shuts
the hub down gracefully.

The same fleet, and the same credentials file, can be put in a hub run by a person:
`twin serve --load-fleet CARS:APPS --creds FILE` (see `provision_fleet` and `reusable_fleet`),
for `twin load --hub ws://... --creds FILE` to load it from elsewhere.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import attrs
import trio

from twin.store import as_engine


__all__ = ["LOAD_HUB_CONFIG", "FleetMismatch", "provision", "provision_fleet", "reusable_fleet"]

#: The domain of the load accounts `provision` creates (`app<n>@load`).
LOAD_DOMAIN = "@load"

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
        account = await hub.create_account(f"app{a}{LOAD_DOMAIN}", "pw")
        token = await as_engine(store).issue_token(account)
        first = a * per_app
        last = cars if a == apps - 1 else min(first + per_app, cars)
        names = [f"b{n}" for n in range(first, last)]
        states = [new_vehicle(c, owner=account, plan=plans[n % 2], powertrain=powertrains[n % 4]) for n, c in enumerate(names)]
        secrets = await hub.add_cars(states, linked=True)
        creds["apps"].append({"account": account, "token": token, "cars": ["car:" + c for c in names]})
        creds["cars"].update(zip(names, secrets))
    return creds


class FleetMismatch(ValueError):
    """The store already holds load accounts that the credentials file does not describe."""


async def reusable_fleet(store: Any, cars: int, apps: int, path: Path) -> dict[str, Any] | None:
    """Whether a load fleet of `cars` cars and `apps` apps, credentials in `path`, must be provisioned.

    None: `store` holds no load account yet, provision it. The credentials in `path`: the store
    already holds exactly that fleet and still accepts every token and car secret of the file
    (starting again with the same data is idempotent). Otherwise raise `FleetMismatch` saying
    why: provisioning again would clash with the accounts, and new secrets would silently
    invalidate a file someone may be using.
    """
    engine = as_engine(store)  # a `Store` or any `Engine` (a cluster's Redis)
    held = [a for a in await engine.accounts() if a.endswith(LOAD_DOMAIN)]
    if not held:
        return None
    where = f"the store already holds {len(held)} load account(s) (app<n>{LOAD_DOMAIN})"
    fix = "use the credentials file written when they were provisioned, or a new store"
    try:
        creds = json.loads(path.read_text())
        their_apps, their_cars = creds["apps"], creds["cars"]
    except FileNotFoundError:
        raise FleetMismatch(f"{where} but {path} does not exist: {fix}") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FleetMismatch(f"{where} but {path} is not a load credentials file ({exc}): {fix}") from None
    if (len(their_cars), len(their_apps), len(held)) != (cars, apps, apps):
        raise FleetMismatch(f"{where}; {path} describes {len(their_cars)}:{len(their_apps)} (cars:apps), not {cars}:{apps}: "
                            f"ask for that fleet, or {fix}")
    stale = [e["account"] for e in their_apps if await engine.account_for_token(e["token"]) != e["account"]]
    stale += [vid for vid, secret in their_cars.items() if not await engine.check_vehicle_secret(vid, secret)]
    if stale:
        raise FleetMismatch(f"{where} but {len(stale)} credential(s) of {path} are not this store's (first: {stale[0]}): {fix}")
    return creds  # type: ignore[no-any-return]


async def provision_fleet(hub: Any, store: Any, cars: int, apps: int, path: Path) -> dict[str, Any]:
    """`provision`, wait until the hub has taken it in, write the credentials to `path`
    (owner-only, replaced atomically: a reader never sees half a file); return them."""
    creds = await provision(hub, store, cars, apps)
    await hub.settle()
    await trio.to_thread.run_sync(_write_private, path, json.dumps(creds))
    return creds


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(text)
    os.replace(tmp, path)


async def serve(data: Path, cars: int, apps: int, config: dict[str, Any] | None = None) -> None:
    """Provision (unless `data` already holds this fleet), print READY, serve until stdin closes."""
    from twin.server import HubConfig, pace_gc, serve_hub, tune_gc
    from twin.store import Store

    store = Store.open(data / "hub.sqlite3")
    try:
        creds_path = data / "creds.json"
        reuse = await reusable_fleet(store, cars, apps, creds_path)
        async with trio.open_nursery() as nursery:
            hub = await nursery.start(serve_hub, store, HubConfig(port=0, **(config or LOAD_HUB_CONFIG)))
            if reuse is None:
                await provision_fleet(hub, store, cars, apps, creds_path)
            tune_gc()
            housekeeping = trio.CancelScope()

            async def collect() -> None:
                with housekeeping:
                    await pace_gc()

            nursery.start_soon(collect)
            print(f"READY {hub.port}", flush=True)

            def stats() -> None:
                print("STATS " + json.dumps(attrs.asdict(hub.statistics())), flush=True)

            while True:
                line = await trio.to_thread.run_sync(sys.stdin.readline)
                if not line:
                    break
                if line.strip() == "stats":
                    stats()
                elif line.strip() == "freeze":  # the links are connected: their objects are long-lived
                    tune_gc()
                    print("FROZEN", flush=True)
            stats()
            housekeeping.cancel()
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

