"""`twin replay` and `twin explore`: what the command line does with scenario files.

Exit status of `replay`: 0 when every file ran and every check passed, 1 when a check failed,
2 when a file could not be read or set up, or nothing was given or selected (the other files
still run). `explore`: 0 when no example broke an invariant, 1 when one did (the shrunk case
is written as a scenario file).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import attrs

from ._format import Expect, Scenario, ScenarioError, load_scenario
from ._report import Printer, json_results, junit_xml
from ._runner import Outcome, Report, replay

__all__ = ["expand_paths", "explore_main", "parse_step_numbers", "replay_main", "select_steps"]

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


def parse_step_numbers(text: str) -> set[int]:
    """'3', '3,5', '2-4' -> step numbers (1-based, as the timeline prints them)."""
    numbers: set[int] = set()
    for part in text.split(","):
        first, dash, last = part.strip().partition("-")
        try:
            lo, hi = int(first), int(last) if dash else int(first)
        except ValueError:
            raise ValueError(f"--step takes numbers and ranges such as 3, 2-5 or 1,4; got {text!r}") from None
        if lo < 1 or hi < lo:
            raise ValueError(f"--step: {part.strip()!r} is not a step number or an increasing range")
        numbers.update(range(lo, hi + 1))
    return numbers


def select_steps(scenario: Scenario, numbers: set[int] | None = None, keyword: str | None = None) -> tuple[Scenario, frozenset[int]]:
    """The scenario to run for a selection, and the selected step numbers.

    Steps are a timeline, so every step up to the last selected one still runs (a later step
    needs what the earlier ones did); only the selected ones are checked and printed.
    `numbers` picks by number, `keyword` by a case-insensitive part of the step's title
    (its number, action and note); with both, a step must match both.
    """
    chosen = [
        s.index
        for s in scenario.steps
        if (numbers is None or s.index in numbers) and (keyword is None or keyword.lower() in s.title.lower())
    ]
    if not chosen:
        return attrs.evolve(scenario, steps=()), frozenset()
    last = max(chosen)
    steps = tuple(s if s.index in chosen else attrs.evolve(s, expect=Expect()) for s in scenario.steps if s.index <= last)
    return attrs.evolve(scenario, steps=steps), frozenset(chosen)


def _only(report: Report, selected: frozenset[int]) -> Report:
    kept = tuple(attrs.evolve(o, checks=()) if o.step.index not in selected else o for o in report.outcomes)
    return attrs.evolve(report, outcomes=kept)


def replay_main(
    paths: Sequence[str],
    *,
    junit: str | None = None,
    json_path: str | None = None,
    steps: set[int] | None = None,
    keyword: str | None = None,
    verbose: bool = False,
    quiet: bool = False,
    invariants: bool | None = None,
    out: TextIO | None = None,
) -> int:
    """Replay scenario files and traces; print the timeline; write JUnit and JSON on request."""
    out = out or sys.stdout
    files = expand_paths(paths)
    if not files:
        print("twin replay: no scenario files given (FILE.toml, a recorded trace, or a folder of them)", file=sys.stderr)
        return 2
    selecting = steps is not None or keyword is not None
    printer = Printer(out, verbose=verbose, quiet=quiet)
    results: list[tuple[str, Report | str]] = []
    started = time.perf_counter()
    errors = failed = skipped = 0
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
            selected = frozenset(s.index for s in scenario.steps)
            if selecting:
                scenario, selected = select_steps(scenario, steps, keyword)
                if not selected:
                    skipped += 1
                    continue
            printer.start(scenario)

            def shown(outcome: Outcome, selected: frozenset[int] = selected) -> None:
                if outcome.step.index in selected:
                    printer.outcome(outcome)

            report = _only(replay(scenario, invariants=invariants, on_outcome=shown), selected)
        except ScenarioError as exc:
            printer.error(str(path), exc.message)
            results.append((str(path), exc.message))
            errors += 1
            continue
        printer.end(report)
        results.append((str(path), report))
        failed += not report.passed
    wall = time.perf_counter() - started
    ran = len(files) - skipped
    passed = ran - failed - errors
    none = f"; {skipped} had no step selected" if skipped else ""
    print(
        f"replayed {ran} scenario(s): {passed} passed, {failed} failed, {errors} could not run{none} ({wall:.2f} s)",
        file=out,
    )
    if junit:
        Path(junit).write_text(junit_xml(results), encoding="utf-8")
    if json_path:
        Path(json_path).write_text(json.dumps(json_results(results), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if not ran:
        print("twin replay: no step matched --step/-k in any file", file=sys.stderr)
        return 2
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
