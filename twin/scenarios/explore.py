"""Property-based exploration: hypothesis draws fleets and timelines, the in-process fleet runs
them under trio, the invariants judge every step, and a failure is shrunk to a scenario file.

How it works: hypothesis's stateful testing is synchronous only, so an example is one
`@given(st.data())` call that runs its own `trio.run` under `MockClock(autojump_threshold=0)`.
Inside, the fleet is drawn first (cars from `strategies.vehicles`, then sharees, keys and
drivers set up through the protocol), then steps are drawn one at a time with `data.draw`
(`strategies.fleet_step`: who sends what, and how long after the previous step) and run at
once, so a later draw happens after the earlier steps really ran. After each step the
invariants of `twin.scenarios.invariants` are checked; the first violation fails the example.
Hypothesis then shrinks the choice sequence (fewer steps, simpler bodies, smaller fleets),
and the last failing run it makes is the minimal one: its fleet and steps are written as a
scenario TOML file, which `twin replay` runs to the same violation.
"""

from __future__ import annotations

import datetime as _dt
import functools
from pathlib import Path
from typing import Any, TextIO

import attrs
import trio
import trio.testing
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from ..model import VEHICLE, VehicleModel, VehicleState
from ..protocol import ALL_SHARED_FUNCTIONS, DriverProfile, Plan, SharedFunction
from . import strategies as strat
from ._format import CarSpec, DriverSpec, Scenario, ScenarioStep, ShareSpec
from ._match import Check
from ._runner import open_run
from ._writer import dump_scenario

__all__ = ["ExploreResult", "InvariantBroken", "explore", "explore_example", "fleets", "run_example", "steps_for"]

#: the strategies' epoch (2026-01-01T00:00Z), shown in Japan's time like the cars' clocks
EPOCH = _dt.datetime.fromtimestamp(strat.EPOCH, _dt.timezone(_dt.timedelta(hours=9)))


class InvariantBroken(AssertionError):
    """An example broke an invariant; `scenario` is the run up to and including the step."""

    def __init__(self, scenario: Scenario, violations: tuple[Check, ...]) -> None:
        super().__init__("; ".join(f"step {c.step} {c.what}: {c.summary}" for c in violations))
        self.scenario = scenario
        self.violations = violations


@attrs.frozen
class ExploreResult:
    examples: int
    failure: Scenario | None
    violations: tuple[Check, ...] = ()
    path: Path | None = None


def car_spec(state: VehicleState) -> CarSpec:
    """The scenario form of a car drawn by `strategies.vehicles` (no sharees, keys, drivers yet)."""
    info, contract = state.info, state.contract
    return CarSpec(
        id=state.vehicle_id,
        owner=contract.owner,
        plan=contract.plan or Plan.STANDARD,
        navi_package=contract.navi_package,
        powertrain=info.powertrain,
        wifi=contract.wifi,
        dashcam=contract.dashcam,
        has_digital_key=info.has_digital_key,
        has_dashcam=info.has_dashcam,
        has_remote_start_kit=info.has_remote_start_kit,
        emergency_checked=contract.emergency_checked,
        position=state.status.position.value,
    )


_functions = st.frozensets(st.sampled_from(sorted(SharedFunction, key=lambda f: f.value)), min_size=1).map(
    lambda fs: ALL_SHARED_FUNCTIONS if len(fs) == len(ALL_SHARED_FUNCTIONS) else fs
)


#: mostly an owned car (its rules are where the roles matter), sometimes an unlinked one
_owners = st.sampled_from([strat.OWNER, strat.OWNER, strat.OWNER, None])


@st.composite
def fleets(draw: st.DrawFn, cars: int = 1) -> tuple[CarSpec, ...]:
    """Cars from `strategies.vehicles`, each with sharees, keys and drivers the rules allow."""
    out = []
    for n in range(1, cars + 1):
        state = draw(strat.vehicles(f"c{n}", owner=_owners))
        spec = car_spec(state)
        if spec.owner is not None:
            # counts from sampled_from: drawn evenly, shrunk towards the first (one sharee)
            friends = draw(st.permutations(strat.FRIENDS))[: draw(st.sampled_from([1, 2, 0, 3]))]
            sharees = tuple(
                ShareSpec(account=f, functions=draw(st.one_of(st.just(ALL_SHARED_FUNCTIONS), _functions))) for f in friends
            )
            keys: tuple[str, ...] = ()
            if spec.plan is Plan.STANDARD and spec.has_digital_key:
                keys = tuple(draw(st.permutations(strat.FRIENDS))[: draw(st.sampled_from([0, 1, 2]))])
            drivers = tuple(
                DriverSpec(account=a, name=a.title(), profile=DriverProfile())
                for a in draw(st.permutations((strat.OWNER, *strat.FRIENDS)))[: draw(st.sampled_from([0, 1, 2]))]
            )
            spec = attrs.evolve(spec, sharees=sharees, keys=keys, drivers=drivers)
        out.append(spec)
    return tuple(out)


#: seconds between steps: mostly moments, sometimes a timer's length, now and then hours
_gaps = st.one_of(
    st.integers(0, 90).map(float),
    st.sampled_from([300.0, 600.0, 1200.0, 3600.0]),
    st.integers(0, 2 * 86400).map(float),
)


@functools.cache
def _bodies() -> tuple[st.SearchStrategy[Any], st.SearchStrategy[Any], st.SearchStrategy[Any]]:
    """The strategies' commands and events, built once (building them is the slow part)."""
    accounts = (strat.OWNER, *strat.FRIENDS)
    answers = st.sampled_from(strat.FRIEND_ANSWERS)
    return strat.commands(accounts), strat.events(accounts), answers


@st.composite
def steps_for(draw: st.DrawFn, fleet: tuple[CarSpec, ...]) -> tuple[str, strat.Step]:
    """(car id, step) in the spirit of `strategies.fleet_step`: mostly the owner or the car,
    often a friend (mostly one the fleet gave a role, trying any command, answering an
    invitation or giving a key up), now and then the stranger. Built from the strategies'
    `commands`, `events` and `FRIEND_ANSWERS`, drawn anew for each step."""
    commands, events, answers = _bodies()
    car = fleet[draw(st.integers(0, len(fleet) - 1)) if len(fleet) > 1 else 0]
    role = draw(st.sampled_from(["owner", "car", "friend", "owner", "car", "friend", "stranger"]))
    gap = draw(_gaps)
    if role == "car":
        return car.id, strat.Step(car.address, draw(events), gap)
    if role == "owner":
        return car.id, strat.Step("user:" + (car.owner or strat.OWNER), draw(commands), gap)
    if role == "friend":
        known = [a for a in car.accounts() if a in strat.FRIENDS]
        pool = known if known and draw(st.integers(0, 3)) < 3 else list(strat.FRIENDS)
        body = draw(st.one_of(commands, commands, commands, answers))
        return car.id, strat.Step("user:" + draw(st.sampled_from(pool)), body, gap)
    return car.id, strat.Step("user:" + strat.STRANGER, draw(commands), gap)


def _scenario(cars: tuple[CarSpec, ...], steps: list[ScenarioStep], name: str = "found by twin explore") -> Scenario:
    return Scenario(name=name, epoch=EPOCH, accounts=strat.ACCOUNTS, cars=cars, steps=tuple(steps), source="<explore>")


def _to_step(drawn: strat.Step, index: int, t: float, car: str) -> ScenarioStep:
    if drawn.sender.startswith("car:"):
        return ScenarioStep(index=index, kind="report", t=t, start=t, sender=drawn.sender, target=drawn.sender, body=drawn.body)
    target = "operator" if type(drawn.body) in strat.OPERATOR_COMMANDS else car
    return ScenarioStep(index=index, kind="send", t=t, start=t, sender=drawn.sender, target=target, body=drawn.body)


async def run_example(data: Any, fleet: tuple[CarSpec, ...], *, max_steps: int = 30, model: VehicleModel = VEHICLE) -> list[ScenarioStep]:
    """Inside trio: set `fleet` up, then draw and run steps one at a time until hypothesis
    says stop, `max_steps`, or a broken invariant (raised as InvariantBroken once the fleet
    is closed). Returns the steps run."""
    scenario = _scenario(fleet, [])
    steps: list[ScenarioStep] = []
    broken: InvariantBroken | None = None
    t = 0.0
    async with open_run(scenario, model=model, invariants=True, keep=False) as run:
        for index in range(1, max_steps + 1):
            if data.draw(st.integers(0, 99), label="stop here?") >= 95:
                break
            car, drawn = data.draw(steps_for(fleet), label=f"step {index}")
            t += drawn.dt
            step = _to_step(drawn, index, t, "car:" + car)
            steps.append(step)
            outcome = await run.step(step)
            failed = tuple(c for c in outcome.checks if not c.passed)
            if failed:
                failing = attrs.evolve(step, note=f"breaks invariant(s): {'; '.join(c.summary for c in failed)}"[:300])
                broken = InvariantBroken(_scenario(fleet, steps[:-1] + [failing]), failed)
                break
    if broken is not None:
        raise broken
    return steps


def explore_example(data: Any, *, max_steps: int = 30, cars: int = 1, model: VehicleModel = VEHICLE) -> int:
    """Run one example drawn from `data` (hypothesis's `st.data()`) in its own `trio.run`
    under `MockClock(autojump_threshold=0)`; raise InvariantBroken. Returns the steps run."""
    fleet = data.draw(fleets(cars), label="fleet")

    async def main() -> int:
        return len(await run_example(data, fleet, max_steps=max_steps, model=model))

    return trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def explore(
    *,
    examples: int = 200,
    seed: int = 0,
    max_steps: int = 30,
    cars: int = 1,
    model: VehicleModel = VEHICLE,
    out: Path | None = None,
    log: TextIO | None = None,
) -> ExploreResult:
    """Try `examples` random fleets and timelines; on a failure, shrink it and write it to `out`.

    Deterministic for a given seed (hypothesis's database is not used). The written file is
    replayed once more from disk to confirm it reproduces the failure.
    """
    failures: list[InvariantBroken] = []
    ran = [0]

    @hypothesis_seed(seed)
    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        derandomize=False,
        phases=(Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
        report_multiple_bugs=False,
        print_blob=False,
    )
    @given(st.data())
    def search(data: Any) -> None:
        ran[0] += 1
        try:
            explore_example(data, max_steps=max_steps, cars=cars, model=model)
        except InvariantBroken as broken:
            failures.append(broken)
            raise

    try:
        search()
    except InvariantBroken:
        pass
    if not failures:
        return ExploreResult(examples=ran[0], failure=None)
    minimal = failures[-1]  # hypothesis runs the shrunk example last
    scenario = attrs.evolve(minimal.scenario, name=f"found by twin explore --seed {seed}")
    path = None
    if out is not None:
        header = "\n".join([
            f"Found by `twin explore --examples {examples} --seed {seed}` and shrunk by hypothesis.",
            "It breaks:",
            *(f"  step {c.step} {c.what}: {c.summary}" for c in minimal.violations),
            f"Reproduce with: twin replay {out}",
        ])
        out.write_text(dump_scenario(scenario, header=header), encoding="utf-8")
        path = out
    if log is not None:
        print(f"explored {ran[0]} example(s) including shrinking", file=log)
    return ExploreResult(examples=ran[0], failure=scenario, violations=minimal.violations, path=path)
