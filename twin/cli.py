"""The `twin` command."""

from __future__ import annotations

import argparse
import sys

_LOAD_EPILOG = """\
Without --hub, twin load starts its own hub process and provisions the fleet in it. To load a
hub run separately (another machine, another configuration), provision the fleet there first:

  twin serve --host 0.0.0.0 --port 8765 --data hub.sqlite3 --load-fleet 5000:200 --creds creds.json
  twin load --hub ws://HUB:8765/ --creds creds.json --duration 60s --json report.json

The hub writes creds.json (tokens and car secrets: keep it private) and prints the twin load
line to use; serving the same --data again with the same fleet reuses it. With --hub, --cars
and --apps take part of the file's fleet (default: all of it). Such a hub keeps its own limits
(the embedded one lifts its rate limits), and the report has no hub CPU or statistics for it.
"""


_REPLAY_EPILOG = """\
exit status: 0 every file ran and every check passed; 1 a check failed (or a trace differs
from its recording); 2 a file could not be read or set up (the other files still run), or
--step/-k selected no step anywhere.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="twin", description="A digital twin of connected cars, on trio.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run an in-process fleet through an evening and a night (virtual time)")
    demo.add_argument("--cars", type=int, default=1000, help="fleet size besides the story's two cars (default 1000)")
    demo.add_argument("--quiet", action="store_true", help="print only the fleet summary")
    replay = sub.add_parser("replay", help="replay scenario files (or recorded traces) on the in-process fleet, in virtual time",
                            epilog=_REPLAY_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    replay.add_argument("files", nargs="+", metavar="FILE", help="scenario .toml files, recorded .trace.jsonl traces, or folders of them")
    replay.add_argument("--junit", metavar="FILE", help="also write the results as JUnit XML (one testcase per expectation)")
    replay.add_argument("--json", metavar="FILE", help="also write the results as JSON (per file its status, per check its step and diff)")
    replay.add_argument("--step", dest="steps", action="append", metavar="N[-M][,...]",
                        help="check and print only these steps (the earlier ones still run, unchecked); repeatable")
    replay.add_argument("-k", dest="keyword", metavar="TEXT",
                        help="check and print only the steps whose number, action or note contains TEXT (ignoring case)")
    replay.add_argument("-v", "--verbose", action="store_true", help="show state pushes too, and every reply, delivery and note whole")
    replay.add_argument("-q", "--quiet", action="store_true", help="print only failures and the summary")
    replay.add_argument("--no-invariants", dest="invariants", action="store_const", const=False, default=None, help="check only the written expectations")
    describe = sub.add_parser("describe", help="what a scenario can send, report and check: messages, state fields, error codes")
    describe.add_argument("topic", nargs="?", metavar="TAG|state|errors",
                          help="a message's wire tag, `state` (every state field with its unit) or `errors` (every code, "
                               "its meaning and the commands it refuses); none: the list of topics")
    explore = sub.add_parser("explore", help="let hypothesis search for steps that break an invariant; write the shrunk case as a scenario")
    explore.add_argument("--examples", type=int, default=200, help="how many random fleets and timelines to try (default 200)")
    explore.add_argument("--seed", type=int, default=0, help="hypothesis seed: the same seed explores the same cases (default 0)")
    explore.add_argument("--steps", type=int, default=30, help="at most this many steps per example (default 30)")
    explore.add_argument("--cars", type=int, default=1, help="cars per fleet (default 1)")
    explore.add_argument("--out", default="explore-failure.toml", metavar="FILE", help="where to write a failing case (default explore-failure.toml)")
    explore.add_argument("-q", "--quiet", action="store_true", help="print only the verdict")
    serve = sub.add_parser("serve", help="run the websocket hub (embedded SQLite store); Ctrl-C or SIGTERM stops it gracefully")
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765, help="port to listen on (default 8765)")
    serve.add_argument("--data", default="twin-hub.sqlite3", metavar="PATH", help="the store file (default twin-hub.sqlite3)")
    serve.add_argument("--engine", metavar="URL", help="keep everything durable in Redis (redis://HOST:PORT/DB) instead of --data, as one node of a cluster: "
                            "start any number of `twin serve --engine` with the same URL (docs/cluster.md)")
    serve.add_argument("--demo", action="store_true", help="on a new store, provision demo accounts and cars and print their credentials")
    serve.add_argument("--record", metavar="FILE", help="record every inbound frame with its time to FILE (a trace `twin replay` plays back)")
    serve.add_argument("--load-fleet", dest="load_fleet", type=_fleet, metavar="CARS:APPS",
                       help="also hold a load fleet: APPS accounts app<n>@load owning CARS linked cars, their credentials "
                            "written to --creds for `twin load --hub URL --creds FILE`; served again with the same store, "
                            "the fleet and file are reused (a different fleet is refused)")
    serve.add_argument("--creds", metavar="FILE", help="with --load-fleet: where the load fleet's tokens and car secrets go")
    car = sub.add_parser("car", help="speak as a car's telematics unit: send one event (alarm, door, ignition, position...) or stay attached",
                         description="Attach to a hub as car ID's vehicle link. With EVENT, send it and detach; without, stay attached "
                                     "(the car is online) and carry out every actuation until Ctrl-C.")
    car.add_argument("--hub", required=True, metavar="URL", help="the hub, e.g. ws://127.0.0.1:8765/")
    car.add_argument("--car", required=True, metavar="ID", help="the car's id (car:ID), e.g. demo-1")
    car.add_argument("--secret", required=True, help="the car's link secret (twin serve --demo prints them)")
    car.add_argument("--fail", metavar="REASON", help="while attached, refuse every actuation with this reason (actuation_failed)")
    car.add_argument("event", nargs="?", metavar="EVENT", help="an event type, e.g. alarm_sounding, door_changed, ignition_changed")
    car.add_argument("fields", nargs="*", metavar="FIELD=VALUE", help='its fields, e.g. cause="door forced", door=trunk open=true')
    load = sub.add_parser("load", help="load-test a hub: cars on vehicle links living a day, app users sending an open-loop command mix",
                          epilog=_LOAD_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    load.add_argument("--cars", type=int, default=None,
                      help="simulated cars, each on its own vehicle link (default 100; with --hub, every car of --creds)")
    load.add_argument("--apps", type=int, default=None,
                      help="app users, each on its own session (default 10; with --hub, every app of --creds)")
    load.add_argument("--duration", default="10s", help="measured time, e.g. 60s, 2m, 500ms (default 10s)")
    load.add_argument("--rate", type=float, default=None, help="commands per second in all (default: the profile's rate_per_app x apps)")
    load.add_argument("--spawn-rate", type=float, default=500.0, help="car connections opened per second during the ramp (default 500)")
    load.add_argument("--workers", type=int, default=1, help="generator processes, each a trio loop (default 1)")
    load.add_argument("--hub", metavar="URL[,URL...]", help="a running hub (ws://host:port/) instead of an embedded one, or the "
                      "nodes of one cluster separated by commas (apps and cars spread over them round robin); needs --creds")
    load.add_argument("--creds", metavar="FILE",
                      help="with --hub: accounts and car secrets, as `twin serve --load-fleet CARS:APPS --creds FILE` writes them")
    load.add_argument("--profile", metavar="FILE", help="command mix and car life (TOML, see examples/load/)")
    load.add_argument("--timeout", default="5s", help="how long a command may take before it counts as a timeout (default 5s)")
    load.add_argument("--seed", type=int, default=0, help="seed of the arrivals and choices (default 0)")
    load.add_argument("--json", metavar="PATH", help="write the report as JSON")
    load.add_argument("--csv", metavar="PATH", help="write per-command figures as CSV")
    load.add_argument("--plot", metavar="PATH", help="write latency and throughput over time as an SVG file")
    load.add_argument("--fail-if", dest="fail_if", action="append", default=[], metavar="COND",
                      help="a threshold that must hold, e.g. 'p99<100ms' or 'errors<0.1%%' (repeatable); exit 1 if one fails")
    load.add_argument("--plain", action="store_true", help="plain progress lines even on a terminal")
    return parser


def _fleet(text: str) -> tuple[int, int]:
    """'5000:200' -> (5000 cars, 200 apps), for argparse."""
    cars, sep, apps = text.partition(":")
    try:
        fleet = int(cars), int(apps)
    except ValueError:
        fleet = (-1, -1)
    if not sep or fleet[0] < 0 or fleet[1] < 1:
        raise argparse.ArgumentTypeError(f"expected CARS:APPS such as 5000:200 (cars 0 or more, apps 1 or more), got {text!r}")
    return fleet


def _seconds(text: str) -> float:
    """'60s', '2m', '500ms', '1.5' (seconds) -> seconds."""
    t = text.strip().lower()
    for unit, factor in (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if t.endswith(unit):
            return float(t[: -len(unit)]) * factor
    return float(t)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        from .demo import main as demo_main

        if args.cars < 0:
            print("twin demo: --cars must be 0 or more", file=sys.stderr)
            return 2
        return demo_main(args.cars, args.quiet)
    if args.command == "replay":
        from .scenarios._cli import parse_step_numbers, replay_main

        try:
            steps = set().union(*(parse_step_numbers(s) for s in args.steps)) if args.steps else None
        except ValueError as exc:
            print(f"twin replay: {exc}", file=sys.stderr)
            return 2
        return replay_main(args.files, junit=args.junit, json_path=args.json, steps=steps, keyword=args.keyword,
                           verbose=args.verbose, quiet=args.quiet, invariants=args.invariants)
    if args.command == "describe":
        from .scenarios._describe import describe_main

        return describe_main(args.topic, sys.stdout)
    if args.command == "explore":
        from .scenarios._cli import explore_main

        if args.examples < 1 or args.steps < 1 or args.cars < 1:
            print("twin explore: --examples, --steps and --cars must be 1 or more", file=sys.stderr)
            return 2
        return explore_main(examples=args.examples, seed=args.seed, steps=args.steps, cars=args.cars, out_path=args.out, quiet=args.quiet)
    if args.command == "serve":
        from .server._serve import serve_main

        if (args.load_fleet is None) != (args.creds is None):
            print("twin serve: --load-fleet CARS:APPS and --creds FILE go together", file=sys.stderr)
            return 2
        if args.engine is not None and args.record is not None:
            print("twin serve: --record keeps the embedded store for now; leave out --engine", file=sys.stderr)
            return 2
        return serve_main(host=args.host, port=args.port, data=args.data, demo=args.demo, record=args.record,
                          load_fleet=args.load_fleet, creds=args.creds, engine=args.engine)
    if args.command == "load":
        return _load(args)
    if args.command == "car":
        from .client._car import car_main

        return car_main(args.hub, args.car, args.secret, args.event, args.fields, args.fail)
    return 2  # pragma: no cover - argparse rejects unknown commands


def _load(args: argparse.Namespace) -> int:
    from .load import (
        DEFAULT_PROFILE,
        LoadOptions,
        check_open_files,
        load_main,
        load_profile,
        parse_threshold,
        read_creds,
    )

    try:
        duration, timeout = _seconds(args.duration), _seconds(args.timeout)
        thresholds = [parse_threshold(t) for t in args.fail_if]
        profile = load_profile(args.profile) if args.profile else DEFAULT_PROFILE
    except (ValueError, OSError) as exc:
        print(f"twin load: {exc}", file=sys.stderr)
        return 2
    if (args.cars is not None and args.cars < 0) or (args.apps is not None and args.apps < 1) or args.workers < 1 \
            or duration <= 0 or args.spawn_rate <= 0:
        print("twin load: --apps and --workers must be 1 or more, --cars 0 or more, --duration and --spawn-rate positive", file=sys.stderr)
        return 2
    if args.hub and not args.creds:
        print("twin load: --hub needs --creds FILE (the accounts and car secrets to use)", file=sys.stderr)
        return 2
    if args.creds and not args.hub:
        print("twin load: --creds goes with --hub URL (the embedded hub provisions its own fleet)", file=sys.stderr)
        return 2
    if args.hub:
        try:
            creds = read_creds(args.creds, args.cars, args.apps)
        except (ValueError, OSError) as exc:
            print(f"twin load: --creds {exc}", file=sys.stderr)
            return 2
        fleet = len(creds["cars"]), len(creds["apps"])
    else:
        fleet = (100 if args.cars is None else args.cars, 10 if args.apps is None else args.apps)
    try:
        check_open_files(*fleet, args.workers, embedded=not args.hub)
    except ValueError as exc:
        print(f"twin load: {exc}", file=sys.stderr)
        return 2
    sizes = {"cars": args.cars, "apps": args.apps} if args.hub else {"cars": fleet[0], "apps": fleet[1]}
    opts = LoadOptions(**sizes, duration=duration, rate=args.rate, spawn_rate=args.spawn_rate,
                       workers=args.workers, hub=args.hub, creds=args.creds, profile=profile, timeout=timeout, seed=args.seed)
    return load_main(opts, thresholds=thresholds, json_path=args.json, csv_path=args.csv, plot_path=args.plot,
                     live=False if args.plain else None)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
