"""`twin replay` and `twin explore`: what the command line does with scenario files.

Exit status of `replay`: 0 when every file ran and every check passed, 1 when a check failed,
2 when a file could not be read or set up (the other files still run). `explore`: 0 when no
example broke an invariant, 1 when one did (the shrunk case is written as a scenario file).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from ._format import ScenarioError, load_scenario
from ._report import Printer, junit_xml
from ._runner import Report, replay

__all__ = ["expand_paths", "explore_main", "replay_main"]

SCENARIO_SUFFIXES = (".toml",)


def expand_paths(paths: Sequence[str]) -> list[Path]:
    """Files as given; a directory stands for the scenario files in it, sorted by name."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in SCENARIO_SUFFIXES or p.name.endswith(".trace.jsonl"))
            out.extend(found)
        else:
            out.append(path)
    return out


def replay_main(
    paths: Sequence[str],
    *,
    junit: str | None = None,
    verbose: bool = False,
    quiet: bool = False,
    invariants: bool | None = None,
    out: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    files = expand_paths(paths)
    if not files:
        print("twin replay: no scenario files given (FILE.toml, a recorded trace, or a folder of them)", file=sys.stderr)
        return 2
    printer = Printer(out, verbose=verbose, quiet=quiet)
    results: list[tuple[str, Report | str]] = []
    started = time.perf_counter()
    errors = failed = 0
    for path in files:
        if path.name.endswith(".trace.jsonl"):
            from .trace import replay_trace_main

            status, result = replay_trace_main(path, printer=printer, verbose=verbose)
            results.append((str(path), result))
            errors += status == 2
            failed += status == 1
            continue
        try:
            scenario = load_scenario(path)
            printer.start(scenario)
            report = replay(scenario, invariants=invariants, on_outcome=printer.outcome)
        except ScenarioError as exc:
            printer.error(str(path), exc.message)
            results.append((str(path), exc.message))
            errors += 1
            continue
        printer.end(report)
        results.append((str(path), report))
        failed += not report.passed
    wall = time.perf_counter() - started
    passed = len(files) - failed - errors
    print(
        f"replayed {len(files)} scenario(s): {passed} passed, {failed} failed, {errors} could not run ({wall:.2f} s)",
        file=out,
    )
    if junit:
        Path(junit).write_text(junit_xml(results), encoding="utf-8")
    if errors:
        return 2
    return 1 if failed else 0


def explore_main(
    *,
    examples: int,
    seed: int,
    steps: int,
    cars: int,
    out_path: str,
    quiet: bool = False,
    out: TextIO | None = None,
) -> int:
    from .explore import explore

    out = out or sys.stdout
    result = explore(examples=examples, seed=seed, max_steps=steps, cars=cars, out=Path(out_path), log=None if quiet else out)
    if result.failure is None:
        print(f"twin explore: {result.examples} example(s), seed {seed}: every invariant held", file=out)
        return 0
    print(f"twin explore: an invariant broke (seed {seed}); shrunk to {len(result.failure.steps)} step(s):", file=out)
    for check in result.violations:
        print(f"  step {check.step} {check.what}: {check.summary}", file=out)
        for line in check.diff:
            print(f"      {line}", file=out)
    print(f"wrote {result.path}; reproduce with: twin replay {result.path}", file=out)
    return 1
