"""`twin serve`: the hub as a command, with an optional ready-made demo fleet, and an optional
load fleet for `twin load --hub` run from elsewhere.

The load fleet (`--load-fleet CARS:APPS --creds FILE`) is the one `twin load` provisions in
its embedded hub (`twin.load.provision_fleet`): accounts `app<n>@load` owning linked cars
`b<n>`, their tokens and link secrets written to FILE, the file `twin load --creds` reads.
Serving the same store again with the same fleet and file reuses them; a store holding a
different load fleet is refused before the hub listens (`twin.load.reusable_fleet`).

Ctrl-C (SIGINT) and SIGTERM start the graceful shutdown: stop accepting, let in-flight
commands finish for `drain_timeout` seconds and refuse the rest with `offline`, commit every
state, close every socket with 1001. A second signal during the shutdown is ignored; the
shutdown is bounded by its own timeouts.
"""

from __future__ import annotations

import signal
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Callable, TextIO

import trio

from twin.model import new_vehicle
from twin.protocol import Plan, Position, Powertrain, ShareAccept, ShareInvite

from ._gc import pace_gc, tune_gc
from ._hub import Hub, HubConfig, serve_hub
from ._web import WebApp, demo_json

DEMO_PASSWORD = "twin-demo"
DEMO_ACCOUNTS = ("alice@example.com", "bob@example.com", "carol@example.com")


async def provision_demo(hub: Hub, out: TextIO = sys.stdout) -> list[tuple[str, str, str, bool]]:
    """Three accounts; cars of both plans and all powertrains, simulated and linked; one car
    shared (alice -> bob). Every car has a link secret: (car id, owner, secret, linked) for
    each. Prints every credential."""
    for email in DEMO_ACCOUNTS:
        await hub.create_account(email, DEMO_PASSWORD)
    alice, bob, carol = DEMO_ACCOUNTS
    home = Position(35.6586, 139.7454)
    cars = [
        ("demo-1", alice, Plan.STANDARD, Powertrain.HYBRID, False),
        ("demo-2", alice, Plan.LITE, Powertrain.PHEV, False),
        ("demo-3", bob, Plan.STANDARD, Powertrain.PETROL, False),
        ("demo-4", carol, Plan.LITE, Powertrain.BEV, False),
        ("demo-5", carol, Plan.STANDARD, Powertrain.BEV, True),
        ("demo-6", bob, Plan.LITE, Powertrain.HYBRID, True),
        ("demo-7", alice, Plan.STANDARD, Powertrain.BEV, True),
    ]
    print("demo accounts (password for all: %s):" % DEMO_PASSWORD, file=out)
    for email in DEMO_ACCOUNTS:
        print(f"  {email}", file=out)
    print("demo cars:", file=out)
    made = []
    for vid, owner, plan, powertrain, linked in cars:
        state = new_vehicle(vid, owner=owner, plan=plan, powertrain=powertrain, position=home, name=f"{powertrain.value} {plan.value}")
        secret = await hub.add_car(state, linked=linked, secret=True)
        assert secret is not None
        made.append((vid, owner, secret, linked))
        how = "linked: offline until its link attaches" if linked else "simulated by the hub (always online)"
        print(f"  car:{vid}  owner {owner}, {plan.value}, {powertrain.value}; {how}; link secret {secret}", file=out)
    await hub.ask("user:" + alice, "car:demo-1", ShareInvite(account=bob))
    await hub.ask("user:" + bob, "car:demo-1", ShareAccept())
    print(f"  car:demo-1 is shared by {alice} with {bob}", file=out)
    return made


def print_ready_lines(url: str, cars: list[tuple[str, str, str, bool]], out: TextIO = sys.stdout) -> None:
    """How to play the first demo owner's cars' telematics units with `twin car`, ready to paste."""
    first = DEMO_ACCOUNTS[0]
    simulated = next((c for c in cars if c[1] == first and not c[3]), None)
    linked = next((c for c in cars if c[1] == first and c[3]), None)
    print(f"play {first}'s cars' telematics units (twin car --help):", file=out)
    if simulated is not None:
        vid, _, secret, _ = simulated
        base = f"twin car --hub {url} --car {vid} --secret={secret}"  # a secret may start with "-"
        print(f"  {base} alarm_sounding cause=\"door forced\"", file=out)
        print(f"  {base} door_changed door=front_left open=true", file=out)
        print(f"  {base} position_reported lat=35.6812 lon=139.7671", file=out)
    if linked is not None:
        vid, _, secret, _ = linked
        print(f"  twin car --hub {url} --car {vid} --secret={secret}      # car:{vid} online until Ctrl-C", file=out)


async def run_serve(host: str, port: int, data: str, demo: bool, out: TextIO = sys.stdout, record: str | None = None,
                    load_fleet: tuple[int, int] | None = None, creds: str | None = None, engine: str | None = None) -> None:
    """Serve until SIGINT/SIGTERM; with `record`, behind a proxy writing every inbound frame;
    with `load_fleet` (cars, apps), holding that load fleet, its credentials in `creds`.
    Raises `twin.load.FleetMismatch`, before listening, if the store holds another one.
    With `engine` (`redis://HOST:PORT/DB`), everything durable lives in that Redis instead of
    the file `data`, as one node of the cluster sharing it (`record` needs the file for now).
    Several nodes of one cluster may all be given the same `load_fleet` and `creds`: the first
    provisions it, the others (started once its credentials file is written) reuse it."""
    from twin.store import Store, open_engine

    if engine is None:
        store = Store.open(data)
        try:
            await _serve(store, data, host, port, demo, out, record, load_fleet, creds)
        finally:
            store.close()
    else:
        if record is not None:
            raise ValueError("--record keeps the embedded store for now; leave out --engine")
        async with open_engine(engine) as opened:
            await _serve(opened, opened.where, host, port, demo, out, None, load_fleet, creds)
    print("stopped; every state is saved", file=out, flush=True)


async def _serve(storage: Any, where: str, host: str, port: int, demo: bool, out: TextIO, record: str | None,
                 load_fleet: tuple[int, int] | None, creds: str | None) -> None:
    """`run_serve` on open storage (a `Store` or an `Engine`)."""
    from twin.store import as_engine

    fresh = not await as_engine(storage).accounts()
    reuse = None
    if load_fleet is not None:
        from twin.load import reusable_fleet

        if creds is None:
            raise ValueError("a load fleet needs the path of its credentials file")
        reuse = await reusable_fleet(storage, *load_fleet, Path(creds))
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        web = WebApp() if demo and not record else None  # the web app, not behind --record's proxy
        async with _open_hub(storage, host, port, record, web) as (hub, url, begin):
            demo_cars: list[tuple[str, str, str, bool]] = []
            if demo and fresh:
                demo_cars = await provision_demo(hub, out)
            elif demo:
                print(f"{where} already has accounts: not provisioning the demo again", file=out)
            if load_fleet is not None:
                assert creds is not None
                await _load_fleet(hub, load_fleet, creds, reuse, url, out)
            await hub.settle()
            begin()
            tune_gc()
            recording = f"; recording inbound frames to {record}" if record else ""
            if hub.cluster is not None:
                recording += f"; cluster node {hub.cluster.id}"
            if demo_cars:
                print_ready_lines(url, demo_cars, out)
            if web is not None:  # the car panel plays these cars (none if provisioned earlier)
                cars = [{"id": vid, "owner": owner, "secret": secret, "linked": linked} for vid, owner, secret, linked in demo_cars]
                web.files["demo.json"] = demo_json(DEMO_ACCOUNTS, DEMO_PASSWORD, cars)
                print(f"web app: http://{host}:{hub.port}{web.prefix}", file=out)
            print(f"twin hub listening on {url} (store {where}){recording}; Ctrl-C to stop", file=out, flush=True)
            async with trio.open_nursery() as housekeeping:
                housekeeping.start_soon(pace_gc)
                async for signum in signals:
                    print(f"{signal.Signals(signum).name}: shutting down gracefully", file=out, flush=True)
                    hub.shutdown()
                    break
                housekeeping.cancel_scope.cancel()


async def _load_fleet(hub: Hub, fleet: tuple[int, int], creds: str, reuse: dict[str, Any] | None, url: str,
                      out: TextIO) -> None:
    """Provision the load fleet (unless `reuse`) and say how to load this hub with it."""
    cars, apps = fleet
    if reuse is None:
        from twin.load import provision_fleet

        print(f"provisioning a load fleet: {cars} cars on vehicle links, {apps} app accounts...", file=out, flush=True)
        await provision_fleet(hub, hub.engine, cars, apps, Path(creds))
        print(f"load fleet credentials written to {creds}", file=out)
    else:
        print(f"load fleet: reusing the {cars} cars and {apps} app accounts of {creds}", file=out)
    print(f"  load it with: twin load --hub {url} --creds {creds}", file=out)


@asynccontextmanager
async def _open_hub(store: Any, host: str, port: int, record: str | None,
                    web: WebApp | None = None) -> AsyncIterator[tuple[Hub, str, Callable[[], None]]]:
    """The hub itself, or (`record`) the hub behind the recording proxy of `twin.scenarios`; on
    a Redis engine, one node of the cluster sharing it (`twin.cluster`)."""
    from twin.store._engine import REDIS_SCHEMES

    where = getattr(store, "where", None)
    config = HubConfig(host=host, port=port, web=web, cluster=isinstance(where, str) and where.startswith(REDIS_SCHEMES))
    if record:
        from twin.scenarios import open_recorded_hub

        async with open_recorded_hub(store, record, config, begin=False) as recorded:
            yield recorded.hub, recorded.url, recorded.begin
        return
    async with trio.open_nursery() as nursery:
        hub: Hub = await nursery.start(serve_hub, store, config)
        try:
            yield hub, f"ws://{host}:{hub.port}/", lambda: None
        finally:
            hub.shutdown()


def _logging() -> None:
    """Log to stderr: the hub's and the cluster's own messages from INFO up (shard moves, Redis
    lost and found), other libraries' from WARNING; `TWIN_LOG_LEVEL=DEBUG` for more."""
    import logging
    import os

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("twin").setLevel(os.environ.get("TWIN_LOG_LEVEL", "INFO").upper())


def serve_main(*, host: str, port: int, data: str, demo: bool, record: str | None = None,
               load_fleet: tuple[int, int] | None = None, creds: str | None = None, engine: str | None = None) -> int:
    """`twin serve`: 0 once stopped by a signal, 1 if it cannot listen, 2 if the store holds
    another load fleet than `load_fleet` with `creds`, or cannot be used (an unreachable Redis)."""
    from twin.store import StoreError

    from twin.load import FleetMismatch, open_files_limit

    open_files_limit(1 << 20)  # a socket per connection: as many as the hard limit allows
    _logging()
    try:
        trio.run(run_serve, host, port, data, demo, sys.stdout, record, load_fleet, creds, engine)
    except FleetMismatch as exc:
        print(f"twin serve: {data}: {exc}", file=sys.stderr)
        return 2
    except StoreError as exc:
        print(f"twin serve: {exc.message}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"twin serve: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 1
    return 0
