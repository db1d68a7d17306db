"""`twin serve`: the hub as a command, with an optional ready-made demo fleet.

Ctrl-C (SIGINT) and SIGTERM start the graceful shutdown: stop accepting, let in-flight
commands finish for `drain_timeout` seconds and refuse the rest with `offline`, commit every
state, close every socket with 1001. A second signal during the shutdown is ignored; the
shutdown is bounded by its own timeouts.
"""

from __future__ import annotations

import signal
import sys
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable, TextIO

import trio

from twin.model import new_vehicle
from twin.protocol import Plan, Position, Powertrain, ShareAccept, ShareInvite

from ._hub import Hub, HubConfig, serve_hub

DEMO_PASSWORD = "twin-demo"
DEMO_ACCOUNTS = ("alice@example.com", "bob@example.com", "carol@example.com")


async def provision_demo(hub: Hub, out: TextIO = sys.stdout) -> None:
    """Three accounts; cars of both plans and all powertrains, embedded and linked; one car
    shared (alice -> bob). Prints every credential."""
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
    ]
    print("demo accounts (password for all: %s):" % DEMO_PASSWORD, file=out)
    for email in DEMO_ACCOUNTS:
        print(f"  {email}", file=out)
    print("demo cars:", file=out)
    for vid, owner, plan, powertrain, linked in cars:
        state = new_vehicle(vid, owner=owner, plan=plan, powertrain=powertrain, position=home, name=f"{powertrain.value} {plan.value}")
        secret = await hub.add_car(state, linked=linked)
        where = f"vehicle link: id {vid!r}, secret {secret}" if linked else "embedded in the hub"
        print(f"  car:{vid}  owner {owner}, {plan.value}, {powertrain.value}; {where}", file=out)
    await hub.ask("user:" + alice, "car:demo-1", ShareInvite(account=bob))
    await hub.ask("user:" + bob, "car:demo-1", ShareAccept())
    print(f"  car:demo-1 is shared by {alice} with {bob}", file=out)


def _tune_gc() -> None:
    """Once the twins are loaded: move them out of the cyclic collector's scans (`gc.freeze`)
    and collect less often. A hub holds millions of long-lived objects; without this, full
    collections cost about a fifth of its CPU under load and show up as latency spikes."""
    import gc

    gc.freeze()
    gc.set_threshold(100_000, 50, 100)


async def run_serve(host: str, port: int, data: str, demo: bool, out: TextIO = sys.stdout, record: str | None = None) -> None:
    """Serve until SIGINT/SIGTERM; with `record`, behind a proxy writing every inbound frame."""
    from twin.store import Store

    store = Store.open(data)
    try:
        fresh = not list(store.accounts())
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with _open_hub(store, host, port, record) as (hub, url, begin):
                if demo and fresh:
                    await provision_demo(hub, out)
                elif demo:
                    print(f"{data} already has accounts: not provisioning the demo again", file=out)
                await hub.settle()
                begin()
                _tune_gc()
                recording = f"; recording inbound frames to {record}" if record else ""
                print(f"twin hub listening on {url} (store {data}){recording}; Ctrl-C to stop", file=out, flush=True)
                async for signum in signals:
                    print(f"{signal.Signals(signum).name}: shutting down gracefully", file=out, flush=True)
                    hub.shutdown()
                    break
    finally:
        store.close()
    print("stopped; every state is saved", file=out, flush=True)


@asynccontextmanager
async def _open_hub(store: Any, host: str, port: int, record: str | None) -> AsyncIterator[tuple[Hub, str, Callable[[], None]]]:
    """The hub itself, or (`record`) the hub behind the recording proxy of `twin.scenarios`."""
    config = HubConfig(host=host, port=port)
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


def serve_main(*, host: str, port: int, data: str, demo: bool, record: str | None = None) -> int:
    try:
        trio.run(run_serve, host, port, data, demo, sys.stdout, record)
    except OSError as exc:
        print(f"twin serve: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 1
    return 0
