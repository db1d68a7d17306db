"""The `twin` command."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="twin", description="A digital twin of connected cars, on trio.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run an in-process fleet through an evening and a night (virtual time)")
    demo.add_argument("--cars", type=int, default=1000, help="fleet size besides the story's two cars (default 1000)")
    demo.add_argument("--quiet", action="store_true", help="print only the fleet summary")
    replay = sub.add_parser("replay", help="replay scenario files (or recorded traces) on the in-process fleet, in virtual time")
    replay.add_argument("files", nargs="+", metavar="FILE", help="scenario .toml files, recorded .trace.jsonl traces, or folders of them")
    replay.add_argument("--junit", metavar="FILE", help="also write the results as JUnit XML (one testcase per expectation)")
    replay.add_argument("-v", "--verbose", action="store_true", help="show state pushes too")
    replay.add_argument("-q", "--quiet", action="store_true", help="print only failures and the summary")
    replay.add_argument("--no-invariants", dest="invariants", action="store_const", const=False, default=None, help="check only the written expectations")
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
    serve.add_argument("--demo", action="store_true", help="on a new store, provision demo accounts and cars and print their credentials")
    serve.add_argument("--record", metavar="FILE", help="record every inbound frame with its time to FILE (a trace `twin replay` plays back)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        from .demo import main as demo_main

        if args.cars < 0:
            print("twin demo: --cars must be 0 or more", file=sys.stderr)
            return 2
        return demo_main(args.cars, args.quiet)
    if args.command == "replay":
        from .scenarios._cli import replay_main

        return replay_main(args.files, junit=args.junit, verbose=args.verbose, quiet=args.quiet, invariants=args.invariants)
    if args.command == "explore":
        from .scenarios._cli import explore_main

        if args.examples < 1 or args.steps < 1 or args.cars < 1:
            print("twin explore: --examples, --steps and --cars must be 1 or more", file=sys.stderr)
            return 2
        return explore_main(examples=args.examples, seed=args.seed, steps=args.steps, cars=args.cars, out_path=args.out, quiet=args.quiet)
    if args.command == "serve":
        from .server._serve import serve_main

        return serve_main(host=args.host, port=args.port, data=args.data, demo=args.demo, record=args.record)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
