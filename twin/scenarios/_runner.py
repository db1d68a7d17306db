"""Running a scenario on the in-process fleet, step by step, at exact virtual times.

How it works: `run_scenario` opens a fleet (`twin.actors.open_fleet`) whose epoch is the
scenario's, spawns the operator desk, a person actor per account and a car actor per car, and
subscribes to every account's app. The fleet is set up through the protocol itself (the owner
invites and the sharee accepts, keys are issued, drivers registered), so a scenario can only
start from a state the rules allow. Then each step waits until its time, acts, and lets the
fleet settle (`trio.testing.wait_all_tasks_blocked`: every consequence of the step has
happened, and no virtual time passed meanwhile) before its expectations and the invariants
are checked against the real reply, deliveries and states.

A linked car (`telematics = "online"` or `"offline"`) gets a telematics unit of the run's
(`_Unit`) while its link is attached: it answers every actuation its twin sends at once, `ok`
unless a `link` step made it refuse (`actuation_failed` with the step's reason) or go silent
(the twin then answers `timeout`); `link = "attach"` / `"drop"` tell the twin its coverage as
the hub does.

Under `trio.testing.MockClock(autojump_threshold=0)` (what `replay` uses) time only moves when
every task waits, straight to the next deadline: a day of virtual time costs what its events
cost. Deliveries are ordered by time, recipient and sender, and each recipient's by arrival,
so the same scenario prints the same timeline every time.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import attrs
import trio
import trio.testing

from ..actors import Fleet, is_request, open_fleet
from ..errors import Code, DeliveryError
from ..model import OPERATOR, USER, VEHICLE, VehicleModel, VehicleState, new_operator, new_user, new_vehicle
from ..protocol import (
    Alert,
    CoverageChanged,
    Done,
    DriverRegister,
    Envelope,
    Error,
    KeyIssue,
    Ok,
    ShareAccept,
    ShareInvite,
    Telematics,
    unstructure_body,
)
from ._format import CarSpec, Scenario, ScenarioError, ScenarioStep, format_duration
from ._match import (
    Check,
    Delivery,
    brief,
    diff_lines,
    matches,
    mismatches,
    multiset_match,
    plain,
    plain_state,
    show,
)
from .invariants import Invariants, Observation

__all__ = ["Outcome", "Report", "car_state", "open_run", "replay", "run_scenario"]

ASK_TIMEOUT = 60.0  # virtual seconds a command may wait for its reply
_ALERT_KEYS = ("to", "alert", "channel", "car", "text")
_NOTICE_KEYS = ("to", "type", "from", "kind", "car", "cause", "role", "added", "alert", "channel", "text")


@attrs.frozen
class Outcome:
    """What one step did: its reply (or an event's refusal), what was delivered while it ran
    (and, separately, while the timeline waited for it), and its checks."""

    step: ScenarioStep
    now: float  # model time of the action (end of an advance)
    reply: Envelope | None
    deliveries: tuple[Delivery, ...]
    waited: tuple[Delivery, ...]
    checks: tuple[Check, ...]
    timed_out: bool = False


@attrs.frozen
class Report:
    """A whole run: every outcome and check, and what it cost."""

    scenario: Scenario
    outcomes: tuple[Outcome, ...]
    wall_s: float
    virtual_s: float
    messages: int  # inbound messages (setup, commands and car reports)
    deliveries: int

    @property
    def checks(self) -> tuple[Check, ...]:
        return tuple(c for o in self.outcomes for c in o.checks)

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.passed)

    @property
    def passed(self) -> bool:
        return not self.failures


def car_state(car: CarSpec, epoch: float) -> VehicleState:
    """The car as provisioned before setup (sharees, keys and drivers come through commands)."""
    return new_vehicle(
        car.id,
        owner=car.owner,
        plan=car.plan,
        powertrain=car.powertrain,
        navi_package=car.navi_package,
        wifi=car.wifi,
        dashcam=car.dashcam,
        has_digital_key=car.has_digital_key,
        has_dashcam=car.has_dashcam,
        has_remote_start_kit=car.has_remote_start_kit,
        emergency_checked=car.emergency_checked,
        position=car.position,
        name=car.name,
        registration=car.registration,
        started_at=epoch if car.owner is not None else None,
        telematics=car.telematics,
    )


class _Watch:
    """What the wrapped behaviours noticed since the runner last looked: events the cars
    refused (their `Error` goes back to the car itself, out of the runner's sight), what the
    operator desk received, and the state each actor had before it first changed."""

    __slots__ = ("refusals", "desk", "before")

    def __init__(self) -> None:
        self.refusals: list[Envelope] = []
        self.desk: list[Envelope] = []
        self.before: dict[str, Any] = {}


class _Watched:
    """A behaviour as is, reporting to a `_Watch` (so invariants look only at actors that ran)."""

    __slots__ = ("inner", "watch", "kind")

    def __init__(self, inner: Any, watch: _Watch, kind: str) -> None:
        self.inner, self.watch, self.kind = inner, watch, kind

    def step(self, state: Any, env: Envelope, now: float) -> tuple[Any, list[Envelope]]:
        new, out = self.inner.step(state, env, now)
        watch = self.watch
        watch.before.setdefault(getattr(state, "address", "operator"), state)
        kind = env.body.KIND
        if self.kind == "operator":
            if kind not in ("reply", "command"):
                watch.desk.append(env)
        elif kind == "event" and self.kind == "car":
            for e in out:
                if e.target == env.sender and e.id == env.id and isinstance(e.body, Error):
                    watch.refusals.append(e)
        return new, out

    def advance(self, state: Any, now: float) -> tuple[Any, list[Envelope]]:
        new, out = self.inner.advance(state, now)
        if new is not state:
            self.watch.before.setdefault(getattr(state, "address", "operator"), state)
        return new, out

    def next_deadline(self, state: Any) -> float | None:
        return self.inner.next_deadline(state)  # type: ignore[no-any-return]


class _App:
    """An account's connected app (`twin.actors.Inbox`): what it receives joins the run's list."""

    __slots__ = ("account", "sink")

    def __init__(self, account: str, sink: list[Delivery]) -> None:
        self.account, self.sink = account, sink

    def put_nowait(self, envelope: Envelope) -> None:
        self.sink.append(Delivery(self.account, envelope))

    async def put(self, envelope: Envelope) -> None:
        self.sink.append(Delivery(self.account, envelope))
        await trio.lowlevel.checkpoint()


class _Unit:
    """A linked car's telematics unit in a run: answers each actuation at once, as `mode` says."""

    __slots__ = ("address", "router", "mode", "reason")

    def __init__(self, address: str, router: Any) -> None:
        self.address, self.router = address, router
        self.mode, self.reason = "carry_out", ""

    def put_nowait(self, envelope: Envelope) -> None:
        if not is_request(envelope) or self.mode == "silent":
            return
        if self.mode == "carry_out":
            body: Any = Ok(result=Done(detail=f"{envelope.body.TYPE} done"))
        else:
            body = Error(code=Code.ACTUATION_FAILED.value, message=self.reason)
        self.router.deliver_nowait(Envelope(body, sender=self.address, target=envelope.sender, id=envelope.id, ts=envelope.ts))

    async def put(self, envelope: Envelope) -> None:
        self.put_nowait(envelope)
        await trio.lowlevel.checkpoint()


class _Run:
    def __init__(self, scenario: Scenario, fleet: Fleet, model: VehicleModel, invariants: bool, keep: bool) -> None:
        self.scenario = scenario
        self.fleet = fleet
        self.model = model
        self.epoch = scenario.epoch_s
        self.accounts = scenario.all_accounts()
        self.cars = [c.address for c in scenario.cars]
        self.units: dict[str, _Unit] = {}  # linked cars' telematics units, by car address
        self.watch = _Watch()
        self.running: set[str] = set()  # cars whose climate ran when last seen
        self.inbox: list[Delivery] = []
        self.invariants = Invariants(model.config) if invariants else None
        self.keep = keep
        self.messages = 0
        self.delivered = 0

    def spawn(self) -> None:
        fleet = self.fleet
        fleet.spawn("operator", _Watched(OPERATOR, self.watch, "operator"), new_operator())
        person = _Watched(USER, self.watch, "user")
        for account in self.accounts:
            fleet.spawn("user:" + account, person, new_user(account))
        watched = _Watched(self.model, self.watch, "car")
        for car in self.scenario.cars:
            fleet.spawn(car.address, watched, car_state(car, self.epoch))
            if car.linked:
                unit = self.units[car.address] = _Unit("unit:" + car.id, fleet.router)
                if car.telematics is Telematics.ONLINE:
                    fleet.router.register(unit.address, unit)

    async def link(self, step: ScenarioStep) -> None:
        """What a `link` step makes the car's telematics unit do."""
        assert step.target is not None
        unit, router = self.units[step.target], self.fleet.router
        if step.link in ("attach", "drop"):
            attached = unit.address in router
            if step.link == "attach" and not attached:
                router.register(unit.address, unit)
            elif step.link == "drop" and attached:
                router.unregister(unit.address)
            await self.fleet.tell("hub", step.target, CoverageChanged(online=step.link == "attach"))
        else:
            unit.mode, unit.reason = step.link, step.reason

    @contextlib.contextmanager
    def subscribed(self) -> Iterator[None]:
        """Connect every account's app: one small inbox each, all feeding one list."""
        router = self.fleet.router
        for account in self.accounts:
            router.register("app:" + account, _App(account, self.inbox))
        try:
            yield
        finally:
            for account in self.accounts:
                router.unregister("app:" + account)

    async def settle(self) -> None:
        await trio.testing.wait_all_tasks_blocked()

    def drain(self) -> tuple[Delivery, ...]:
        out = list(self.inbox)
        self.inbox.clear()
        out.extend(Delivery("operator", env) for env in self.watch.desk)
        self.watch.desk.clear()
        out.sort(key=lambda d: (d.envelope.ts, d.to, d.envelope.sender))
        self.delivered += len(out)
        return tuple(out)

    def now(self) -> float:
        return self.fleet.clock.now()

    async def wait_until(self, offset: float) -> None:
        target = self.fleet.clock.to_trio(self.epoch + offset)
        if target > trio.current_time():
            await trio.sleep_until(target)
        await self.settle()

    # -- setup through the protocol

    async def setup(self) -> None:
        for car in self.scenario.cars:
            owner = "user:" + car.owner if car.owner else ""
            plan: list[tuple[str, Any]] = []
            for share in car.sharees:
                plan.append((owner, ShareInvite(account=share.account, functions=share.functions)))
                plan.append(("user:" + share.account, ShareAccept()))
            for holder in car.keys:
                plan.append((owner, KeyIssue(account=holder)))
            for driver in car.drivers:
                plan.append((owner, DriverRegister(account=driver.account, name=driver.name, profile=driver.profile)))
            for sender, body in plan:
                reply = await self.fleet.ask(sender, car.address, body, timeout=ASK_TIMEOUT)
                self.messages += 1
                await self.settle()
                if not isinstance(reply.body, Ok):
                    err = reply.body
                    raise ScenarioError(
                        f"{self.scenario.source}: setup of {car.address} failed: {sender[5:]} -> {body.TYPE}"
                        f" was refused ({getattr(err, 'code', '?')}: {getattr(err, 'message', err)}); fix the [[car]] table"
                    )
        self.drain()
        self.watch.refusals.clear()
        self.watch.before.clear()

    # -- the timeline

    def observe(self, step: ScenarioStep, reply: Envelope | None, deliveries: tuple[Delivery, ...]) -> Observation:
        """The actors that ran since the last look, before and after, and every car whose
        climate is running (so a run that should have ended but did not is seen too)."""
        before = self.watch.before
        self.watch.before = {}
        after = {a: self.fleet.state_of(a) for a in before}
        for address in self.running - before.keys():
            before[address] = after[address] = self.fleet.state_of(address)
        for address, state in after.items():
            if isinstance(state, VehicleState):
                if state.climate.started_at is not None:
                    self.running.add(address)
                else:
                    self.running.discard(address)
        return Observation(step=step, now=self.now(), reply=reply, deliveries=deliveries, before=before, after=after)

    async def step(self, step: ScenarioStep) -> Outcome:
        checks: list[Check] = []
        elapsed = self.now() - self.epoch
        self.watch.before.clear()
        await self.wait_until(step.start)
        waited = self.drain()
        if self.invariants is not None and step.start > elapsed:
            # time passing before the step is watched too: timers fire in it (a scheduled start)
            wait = ScenarioStep(index=step.index, kind="advance", t=step.start, start=elapsed)
            obs = self.observe(wait, None, waited)
            checks.extend(attrs.evolve(c, summary="while waiting: " + c.summary) for c in self.invariants.check(obs))
        self.watch.before.clear()
        reply: Envelope | None = None
        timed_out = False
        if step.kind == "send":
            assert step.sender and step.target and step.body is not None
            self.messages += 1
            try:
                reply = await self.fleet.ask(step.sender, step.target, step.body, timeout=ASK_TIMEOUT)
            except DeliveryError:
                timed_out = True
            await self.settle()
        elif step.kind == "report":
            assert step.target and step.body is not None
            self.messages += 1
            self.watch.refusals.clear()
            await self.fleet.tell(step.target, step.target, step.body)
            await self.settle()
            reply = self.watch.refusals[-1] if self.watch.refusals else None
            self.watch.refusals.clear()
        elif step.kind == "advance":
            await self.wait_until(step.t)
        elif step.kind == "link":
            await self.link(step)
            await self.settle()
        deliveries = self.drain()
        now = self.now()
        checks.extend(self.expectations(step, reply, deliveries, timed_out))
        if self.invariants is not None and step.kind != "check":
            checks.extend(self.invariants.check(self.observe(step, reply, deliveries)))
        if not self.keep:
            deliveries, waited = (), ()
        return Outcome(step=step, now=now, reply=reply, deliveries=deliveries, waited=waited, checks=tuple(checks), timed_out=timed_out)

    # -- expectations

    def expectations(self, step: ScenarioStep, reply: Envelope | None, deliveries: tuple[Delivery, ...], timed_out: bool) -> Iterator[Check]:
        e, n, epoch = step.expect, step.index, self.epoch
        if e.ok is not None or e.error is not None or e.result is not None:
            yield self.reply_check(step, reply, timed_out)
        if e.alerts is not None:
            actual = [d.plain() for d in deliveries if isinstance(d.envelope.body, Alert)]
            missing, extra = multiset_match(e.alerts, actual, epoch)
            if not missing and not extra:
                yield Check(n, "alerts", True, f"{len(actual)} alert(s) as expected")
            else:
                diff = [f"- {brief(e.alerts[i], _ALERT_KEYS, epoch)}" for i in missing]
                diff += [f"+ {brief(actual[j], _ALERT_KEYS, epoch)}" for j in extra]
                yield Check(n, "alerts", False, f"{len(missing)} expected alert(s) missing, {len(extra)} unexpected", tuple(diff))
        if e.notices is not None:
            actual = [d.plain() for d in deliveries]
            missing, _ = multiset_match(e.notices, actual, epoch)
            if not missing:
                yield Check(n, "notices", True, f"{len(e.notices)} notice(s) delivered")
            else:
                types = {e.notices[i]["type"] for i in missing}
                diff = [f"- {brief(e.notices[i], list(e.notices[i]), epoch)}" for i in missing]
                keys = list(dict.fromkeys([k for i in missing for k in e.notices[i]] + list(_NOTICE_KEYS)))
                diff += [f"+ {brief(a, keys, epoch)}" for a in actual if a["type"] in types] or ["+ (no delivery of that type)"]
                yield Check(n, "notices", False, f"{len(missing)} expected notice(s) not delivered", tuple(diff))
        if e.absent is not None:
            actual = [d.plain() for d in deliveries]
            unwanted = [a for a in actual if any(matches(p, a, epoch) for p in e.absent)]
            named = ", ".join(brief(p, list(p), epoch) if len(p) > 1 else str(p["type"]) for p in e.absent)
            if not unwanted:
                yield Check(n, "absent", True, f"no {named}")
            else:
                keys = list(dict.fromkeys([k for p in e.absent for k in p] + list(_NOTICE_KEYS)))
                yield Check(n, "absent", False, f"{len(unwanted)} delivery(ies) expected absent", tuple(f"+ {brief(a, keys, epoch)}" for a in unwanted))
        if e.state is not None:
            subject = step.target or ""
            actual_state = plain_state(self.fleet.state_of(subject))
            found = mismatches(dict(e.state), actual_state, epoch)
            if found:
                yield Check(n, "state", False, f"state of {subject}: {len(found)} difference(s)", diff_lines(found, epoch))
            else:
                yield Check(n, "state", True, f"state of {subject} as expected")

    def reply_check(self, step: ScenarioStep, reply: Envelope | None, timed_out: bool) -> Check:
        e, n = step.expect, step.index
        what = "reply" if step.kind == "send" else "accepted"
        if step.kind == "send" and (timed_out or reply is None):
            return Check(n, what, False, f"no reply within {ASK_TIMEOUT:g} s", ("- a reply", "+ (silence)"))
        got = _reply_text(reply)
        if e.error is not None:
            body = reply.body if reply is not None else None
            if not isinstance(body, Error) or body.code != e.error:
                return Check(n, what, False, f"expected error {e.error}, got {got}", (f"- error {e.error}", f"+ {got}"))
            if e.message is not None and mismatches(e.message, body.message, self.epoch):
                return Check(n, what, False, f"error {e.error} does not say {show(e.message)}", (f"- message = {show(e.message)}", f"+ message = {show(body.message)}"))
            return Check(n, what, True, f"error {e.error}" + (f" saying {show(e.message)}" if e.message else ""))
        if e.ok is False:
            ok = reply is not None and isinstance(reply.body, Error)
            return Check(n, what, ok, f"refused, got {got}" if not ok else f"refused ({got})", () if ok else ("- an error", f"+ {got}"))
        # ok = true, or a result
        if step.kind == "report":
            if reply is not None:
                return Check(n, what, False, f"the car refused the event: {got}", ("- accepted", f"+ {got}"))
            return Check(n, what, True, "accepted")
        assert reply is not None
        if not isinstance(reply.body, Ok):
            return Check(n, what, False, f"expected ok, got {got}", ("- ok", f"+ {got}"))
        if e.result is not None:
            actual = plain(unstructure_body(reply.body))["result"]
            found = mismatches(dict(e.result), actual, self.epoch)
            if found:
                return Check(n, what, False, f"ok, but the result differs in {len(found)} place(s)", diff_lines(found, self.epoch))
        return Check(n, what, True, "ok" + (" with the expected result" if e.result is not None else ""))


def _reply_text(reply: Envelope | None) -> str:
    if reply is None:
        return "accepted (no refusal)"
    body = reply.body
    if isinstance(body, Error):
        return f"error {body.code}: {body.message}"
    if isinstance(body, Ok):
        return f"ok {body.result.TYPE}"
    return body.TYPE


@contextlib.asynccontextmanager
async def open_run(
    scenario: Scenario, *, model: VehicleModel = VEHICLE, invariants: bool = True, keep: bool = True
) -> AsyncIterator[_Run]:
    """A fleet holding `scenario`'s cars and accounts, set up and ready for `await run.step(s)`.

    Steps may be given one at a time (exploration draws each after the previous one ran);
    their times must not go backwards. Raises ScenarioError if the setup is refused.
    """
    try:
        async with open_fleet(epoch=scenario.epoch_s, idle=None) as fleet:
            run = _Run(scenario, fleet, model, invariants, keep)
            run.spawn()
            with run.subscribed():
                await run.settle()
                await run.setup()
                yield run
    except BaseExceptionGroup as group:  # the fleet's nursery wraps what the block raised
        if len(group.exceptions) == 1 and not isinstance(group.exceptions[0], BaseExceptionGroup):
            raise group.exceptions[0] from None
        raise


async def run_scenario(
    scenario: Scenario,
    *,
    model: VehicleModel = VEHICLE,
    invariants: bool | None = None,
    keep: bool = True,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> Report:
    """Run `scenario` on a fresh in-process fleet (inside trio; see `replay` for a whole run).

    `model` is the vehicle rules (a patched copy, to plant a bug); `invariants` overrides the
    scenario's own switch; `keep=False` drops deliveries from the outcomes (long benchmarks);
    `on_outcome` sees each outcome as soon as its step is done (a live timeline).
    """
    check_invariants = scenario.invariants if invariants is None else invariants
    started = time.perf_counter()
    t0 = trio.current_time()
    outcomes: list[Outcome] = []
    async with open_run(scenario, model=model, invariants=check_invariants, keep=keep) as run:
        for step in scenario.steps:
            outcome = await run.step(step)
            outcomes.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)
    return Report(
        scenario=scenario,
        outcomes=tuple(outcomes),
        wall_s=time.perf_counter() - started,
        virtual_s=trio.current_time() - t0,
        messages=run.messages,
        deliveries=run.delivered,
    )


def replay(
    scenario: Scenario,
    *,
    model: VehicleModel = VEHICLE,
    invariants: bool | None = None,
    keep: bool = True,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> Report:
    """Run `scenario` in its own `trio.run` under `MockClock(autojump_threshold=0)`."""

    async def main() -> Report:
        return await run_scenario(scenario, model=model, invariants=invariants, keep=keep, on_outcome=on_outcome)

    return trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def describe_time(scenario: Scenario, model_time: float) -> str:
    """'+06:13:00 Fri 02:13:00' for a model time: offset from the epoch, then local clock."""
    import datetime as _dt

    offset = model_time - scenario.epoch_s
    sign = "-" if offset < 0 else "+"
    whole = abs(offset)
    days, rest = divmod(int(whole), 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    frac = whole - math.floor(whole)
    stamp = f"{sign}{days}d{h:02d}:{m:02d}:{s:02d}" if days else f"{sign}{h:02d}:{m:02d}:{s:02d}"
    if frac:
        stamp += f".{int(round(frac * 1000)):03d}"
    local = _dt.datetime.fromtimestamp(model_time, scenario.tz)
    return f"{stamp} {local:%a %H:%M:%S}"


__all__ += ["describe_time", "format_duration"]
