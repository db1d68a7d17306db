"""A hypothesis state machine over the pure vehicle model: the service rules (docs/rules.md) as invariants.

Rules for these tests: synchronous (hypothesis's stateful testing does not run async code, so
the machine drives `VEHICLE.step` / `VEHICLE.advance` directly, firing due deadlines before
each message as the actor does when it wakes); virtual time only, from `EPOCH`; the people are
the scenario strategies' cast (`OWNER`, six `FRIENDS`, a `STRANGER` nobody ever invites) and a
`NEWCOMER` who buys the car after a hand-over. After every step the machine checks:

- climate never runs past its duration or the cap (`used_s <= cap`, runs of at most 20 min);
- at most 5 sharees (pending and accepted), 5 keys, 3 drivers, and `limit_reached` only at
  the limit;
- someone with no relation to the car (the stranger, a friend never let in) never changes
  the state and always gets exactly one `Error`;
- a sharee never does more than it was given: a command needing a function it lacks, or one
  only the owner may give, is refused;
- every request gets exactly one reply (`Ok` or `Error`), now or, for a key or share offer
  waiting on a phone, later; events and replies are never answered with `Ok`;
- a refused command leaves the state untouched and sends nothing but its `Error`;
- a remote lock leaves every door locked, unless a door is open, and then the error names
  exactly the open doors;
- alerts reach only the owner and accepted sharees, state pushes only those allowed a check;
- after a hand-over (delete keys, cancel, wipe) nothing of the old owner is readable, in the
  state or by the next owner.

Bugs the machine found and that are not fixed yet are replayed by `test_known_bugs.py`; the
machine steers around them only while they reproduce (`known_bug`).
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from twin.errors import Code
from twin.model import DEFAULT_CONFIG, VEHICLE, ContractState, SecurityState, VehicleState
from twin.protocol import (
    Alert,
    AlertSettingsGet,
    ClimateScheduleAdd,
    ClimateScheduleRemove,
    ClimateSettings,
    ClimateSettingsSet,
    ClimateStart,
    ClimateStop,
    ClimateGet,
    CloseWindows,
    ContractCancel,
    ContractGet,
    ContractOptions,
    ContractPlan,
    Done,
    Door,
    DriverList,
    DriverRegister,
    Envelope,
    Error,
    GarageChanged,
    FlashHazards,
    GetVehicleInfo,
    GuardRequest,
    HandoverDeleteKeys,
    HandoverStage,
    HandoverWipe,
    KeyAction,
    KeyIssue,
    KeyList,
    KeyRelease,
    KeyRevoke,
    KeyUse,
    Locate,
    Lock,
    Message,
    Ok,
    Plan,
    PoliceReport,
    Role,
    RemoteCheck,
    SetHazards,
    ShareAccept,
    ShareDecline,
    SharedFunction,
    ShareInvite,
    ShareList,
    ShareRevoke,
    SoftwareUpdateAccept,
    StateChanged,
    TrackingRequest,
    Unlock,
    WifiStatus,
)
from twin.scenarios import EPOCH, FRIEND_ANSWERS, FRIENDS, OWNER, STRANGER, commands, events, vehicles

from . import _known_bugs as bugs

CAST = (OWNER, *FRIENDS)  # who the owner invites, hands keys to, registers as drivers
NEWCOMER = "nia"  # buys the car after a hand-over; never part of anyone's circle before
EPS = 1e-6

#: The shared function each command needs from a sharee (guide p.32).
NEEDS: dict[type[Message], SharedFunction] = {
    Lock: SharedFunction.REMOTE_OPERATION,
    SetHazards: SharedFunction.REMOTE_OPERATION,
    CloseWindows: SharedFunction.REMOTE_OPERATION,
    RemoteCheck: SharedFunction.REMOTE_CHECK,
    Locate: SharedFunction.CAR_FINDER,
    FlashHazards: SharedFunction.CAR_FINDER,
    GetVehicleInfo: SharedFunction.VEHICLE_INFO,
    ClimateStart: SharedFunction.REMOTE_CLIMATE,
    ClimateStop: SharedFunction.REMOTE_CLIMATE,
    ClimateGet: SharedFunction.REMOTE_CLIMATE,
    ClimateSettingsSet: SharedFunction.REMOTE_CLIMATE,
    ClimateScheduleAdd: SharedFunction.REMOTE_CLIMATE,
    ClimateScheduleRemove: SharedFunction.REMOTE_CLIMATE,
}

#: Commands only the owner may give; a sharee is never given these.
OWNER_ONLY: frozenset[type[Message]] = frozenset({
    Unlock, ShareInvite, ShareRevoke, ShareList, KeyIssue, KeyRevoke, KeyList, SoftwareUpdateAccept,
    ContractPlan, ContractOptions, ContractCancel, ContractGet, HandoverDeleteKeys, PoliceReport,
    TrackingRequest, GuardRequest, WifiStatus,
})

#: Commands whose answer may wait for a phone (a key or share offer).
DEFERRED: frozenset[type[Message]] = frozenset({ShareInvite, KeyIssue})

#: What a new owner reads right after buying the car.
READS: tuple[Message, ...] = (
    RemoteCheck(), Locate(), GetVehicleInfo(), ShareList(), KeyList(), DriverList(), ContractGet(),
    AlertSettingsGet(), WifiStatus(),
)

dts = st.one_of(
    st.integers(0, 120).map(float),
    st.sampled_from([30.0, 300.0, 600.0, 1200.0, 3600.0]),
    st.integers(0, 3 * 86400).map(float),
)


def cap_s(state: VehicleState) -> float:
    return DEFAULT_CONFIG.climate_cap_s[state.contract.plan or Plan.STANDARD]


def share_of(state: VehicleState, account: str) -> Any:
    return next((s for s in state.shares if s.account == account), None)


def related(state: VehicleState, account: str) -> bool:
    """Whether the car knows `account` at all (anyone else is an outsider to it)."""
    c = state.contract
    return (
        account in (c.owner, c.former_owner)
        or share_of(state, account) is not None
        or any(k.account == account for k in state.keys)
        or any(d.account == account for d in state.drivers)
    )


class VehicleMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.state: VehicleState
        self.now = EPOCH
        self.next_id = 1
        #: requests answered later, when a phone takes (or refuses) an offer: (requester, id)
        self.awaiting: set[tuple[str, int]] = set()

    @initialize(car=vehicles())
    def a_car(self, car: VehicleState) -> None:
        self.state = car

    # --- plumbing: every message goes through here, and every reply is accounted for ---------

    def fire_due(self) -> None:
        """Fire what is due at `now` (as the actor does when it wakes) and account for it."""
        before = self.state
        self.state, fired = VEHICLE.advance(before, self.now)
        self.account_for(fired)
        check_recipients(before, self.state, fired)

    def account_for(self, outbox: list[Envelope], request: Envelope | None = None) -> list[Envelope]:
        """Return the replies to `request`; every other reply must answer an awaited request."""
        mine: list[Envelope] = []
        for env in outbox:
            if env.body.KIND != "reply":
                continue
            assert env.sender == self.state.address
            if request is not None and (env.target, env.id) == (request.sender, request.id):
                mine.append(env)
                continue
            key = (env.target, env.id)
            assert key in self.awaiting, f"a reply nobody is waiting for: {env}"
            self.awaiting.discard(key)
        return mine

    def deliver(self, sender: str, body: Message) -> tuple[VehicleState, VehicleState, list[Envelope], list[Envelope]]:
        """Send `body` from `sender` now. Returns (state before, state after, replies to it, outbox)."""
        self.fire_due()
        before = self.state
        env = Envelope(body, sender=sender, target=before.address, id=self.next_id, ts=self.now)
        self.next_id += 1
        after, outbox = VEHICLE.step(before, env, self.now)
        self.state = after
        mine = self.account_for(outbox, env)
        assert len(mine) <= 1, f"{body} got {len(mine)} replies: {mine}"
        if body.KIND == "event":
            # a numbered event is answered once: taken (`Done`) or refused
            assert len(mine) == 1, f"{body} (id {env.id}) got no answer"
            answer = mine[0].body
            assert isinstance(answer, Error) or (isinstance(answer, Ok) and isinstance(answer.result, Done)), answer
        elif body.KIND == "reply":
            assert not mine, "replies are never answered"
        elif not mine:
            assert type(body) in DEFERRED, f"{body} from {sender} got no reply"
            assert any((p.requester, p.request_id) == (sender, env.id) for p in after.pending)
            self.awaiting.add((sender, env.id))
        if mine and isinstance(mine[0].body, Error):
            assert after == before, f"refused {body} changed the state"
            assert outbox == mine, f"refused {body} still sent {outbox}"
        self.check_lock(before, after, body, mine)
        check_recipients(before, after, outbox)
        return before, after, mine, outbox

    def check_lock(self, before: VehicleState, after: VehicleState, body: Message, mine: list[Envelope]) -> None:
        locking = isinstance(body, Lock) or (isinstance(body, KeyUse) and body.action is KeyAction.LOCK)
        if not locking or not mine:
            return
        reply = mine[0].body
        open_doors = before.status.open_doors()
        if isinstance(reply, Ok):
            assert not open_doors, f"locked with {open_doors} open"
            assert after.status.locked.value is True
            assert not after.status.open_doors()
        elif isinstance(reply, Error) and reply.code == Code.DOOR_OPEN.value:
            assert open_doors
            for door in Door:
                assert (door.value in reply.message) == (door in open_doors), (door, reply.message)
        if open_doors:
            assert isinstance(reply, Error), "a lock with a door open must be refused"

    def known_bug(self, body: Message) -> bool:
        """True if sending `body` now would only replay a bug in `_known_bugs` (while it is there)."""
        c = self.state.climate
        if isinstance(body, ContractPlan) and bugs.downgrade_leaves_used_time_above_the_cap():
            if c.used_s > DEFAULT_CONFIG.climate_cap_s[body.plan]:
                return True
        if isinstance(body, ContractPlan) and bugs.downgrade_mid_run_counts_time_past_the_cap():
            if c.started_at is not None and c.used_s + (self.now - c.started_at) > DEFAULT_CONFIG.climate_cap_s[body.plan]:
                return True
        return False

    def refused(self, mine: list[Envelope]) -> Error:
        assert len(mine) == 1 and isinstance(mine[0].body, Error), mine
        return mine[0].body

    # --- who does what -----------------------------------------------------------------------

    @precondition(lambda self: self.state.contract.owner is not None)
    @rule(body=commands(CAST))
    def owner_commands(self, body: Message) -> None:
        self.fire_due()
        if self.known_bug(body):
            return
        self.deliver("user:" + self.state.contract.owner, body)  # type: ignore[operator]

    @precondition(lambda self: self.state.contract.owner is not None)
    @rule(
        friend=st.sampled_from(FRIENDS),
        kind=st.sampled_from(["share", "key", "driver"]),
        functions=st.frozensets(st.sampled_from(list(SharedFunction)), min_size=1),
    )
    def owner_lets_a_friend_in(self, friend: str, kind: str, functions: frozenset[SharedFunction]) -> None:
        """Sharing, keys and drivers are where the limits are: the owner reaches for them often."""
        body: Message
        if kind == "share":
            body = ShareInvite(account=friend, functions=functions)
        elif kind == "key":
            body = KeyIssue(account=friend)
        else:
            body = DriverRegister(account=friend, name=friend.title())
        before, after, mine, _ = self.deliver("user:" + self.state.contract.owner, body)  # type: ignore[operator]
        if mine and isinstance(mine[0].body, Error) and mine[0].body.code == Code.LIMIT_REACHED.value:
            held = {"share": before.shares, "key": before.keys, "driver": before.drivers}[kind]
            limit = {"share": 5, "key": 5, "driver": 3}[kind]
            assert len(held) == limit, f"{kind} limit reached with only {len(held)}"

    @precondition(lambda self: self.state.contract.owner is not None)
    @rule(data=st.data(), duration=st.sampled_from([10, 20]), stop=st.booleans())
    def climate_from_the_app(self, data: st.DataObject, duration: int, stop: bool) -> None:
        """The owner or a sharee starts (or stops) the climate: the cap and the run lengths get tested."""
        self.fire_due()
        people = [self.state.contract.owner, *(s.account for s in self.state.shares if s.accepted)]
        who = data.draw(st.sampled_from(people))
        body: Message = ClimateStop() if stop else ClimateStart(duration_min=duration)
        _, after, mine, _ = self.deliver("user:" + who, body)  # type: ignore[operator]
        if isinstance(mine[0].body, Ok) and not stop:
            c = after.climate
            assert c.started_at == self.now and c.ends_at is not None
            assert c.ends_at - c.started_at <= duration * 60

    @precondition(lambda self: self.state.contract.owner is not None)
    @rule(plan=st.sampled_from(list(Plan)), navi=st.booleans())
    def owner_changes_plan(self, plan: Plan, navi: bool) -> None:
        self.fire_due()
        body = ContractPlan(plan=plan, navi_package=navi and plan is Plan.STANDARD)
        if not self.known_bug(body):
            self.deliver("user:" + self.state.contract.owner, body)  # type: ignore[operator]

    @precondition(lambda self: any(not s.accepted for s in self.state.shares))
    @rule(data=st.data(), accepts=st.booleans())
    def invitee_answers(self, data: st.DataObject, accepts: bool) -> None:
        self.fire_due()
        invited = [s for s in self.state.shares if not s.accepted]
        if not invited:
            return
        share = data.draw(st.sampled_from(invited))
        _, after, mine, _ = self.deliver("user:" + share.account, ShareAccept() if accepts else ShareDecline())
        assert isinstance(mine[0].body, Ok), mine
        now = share_of(after, share.account)
        assert (now is not None and now.accepted and now.functions == share.functions) if accepts else now is None

    @precondition(lambda self: bool(self.state.shares))
    @rule(data=st.data(), body=commands(CAST, only=NEEDS) | commands(CAST))
    def sharee_commands(self, data: st.DataObject, body: Message) -> None:
        """A sharee does what it was given, and nothing more."""
        self.fire_due()
        if not self.state.shares:
            return
        self.friend_sends(data.draw(st.sampled_from([s.account for s in self.state.shares])), body)

    @rule(friend=st.sampled_from(FRIENDS), body=st.sampled_from(FRIEND_ANSWERS) | commands(CAST) | events(CAST))
    def friend_commands(self, friend: str, body: Message) -> None:
        """Any friend: a sharee, a key holder, a driver, or an outsider (changing nothing)."""
        self.fire_due()
        self.friend_sends(friend, body)

    def friend_sends(self, friend: str, body: Message) -> None:
        if friend == self.state.contract.owner or self.known_bug(body):
            return
        share = share_of(self.state, friend)
        outsider = not related(self.state, friend) and not self.signs_up(body)
        before, after, mine, _ = self.deliver("user:" + friend, body)
        if outsider or body.KIND == "event":
            self.refused(mine)
            return
        if share is None:
            return
        needed = NEEDS.get(type(body))
        if needed is not None and not (share.accepted and needed in share.functions):
            assert self.refused(mine).code == Code.NOT_AUTHORIZED.value, (share, body)
        if type(body) in OWNER_ONLY:
            self.refused(mine)

    @precondition(lambda self: bool(self.state.keys))
    @rule(data=st.data())
    def holder_deletes_the_app(self, data: st.DataObject) -> None:
        """Deleting the app deletes the key, active or still offered: it goes, and the phone is told."""
        self.fire_due()
        if not self.state.keys:
            return
        key = data.draw(st.sampled_from(self.state.keys))
        before, after, mine, outbox = self.deliver("user:" + key.account, KeyRelease())
        assert isinstance(mine[0].body, Ok), mine
        assert list(after.keys) == [k for k in before.keys if k.key_id != key.key_id]
        assert all(p.key_id != key.key_id for p in after.pending if p.kind == "key")
        gone = GarageChanged(car=after.address, role=Role.KEY_HOLDER, added=False)
        assert [e.body for e in outbox if e.target == "user:" + key.account and isinstance(e.body, GarageChanged)] == [gone]

    @rule(body=commands(CAST) | events(CAST))
    def stranger_sends(self, body: Message) -> None:
        """Nobody ever invites the stranger: nothing they send changes anything."""
        if self.signs_up(body):
            return  # anyone may sign up for a car nobody owns; that is not a stranger's doing
        _, _, mine, _ = self.deliver("user:" + STRANGER, body)
        self.refused(mine)

    def signs_up(self, body: Message, state: VehicleState | None = None) -> bool:
        c = (state or self.state).contract
        return isinstance(body, ContractPlan) and c.owner is None and c.handover is not HandoverStage.CANCELLED

    @rule(body=events(CAST))
    def car_reports(self, body: Message) -> None:
        self.deliver(self.state.address, body)

    @precondition(lambda self: bool(self.state.pending))
    @rule(data=st.data(), takes_it=st.booleans())
    def phone_answers(self, data: st.DataObject, takes_it: bool) -> None:
        """The invitee's or key holder's phone answers an offer (it holds keys for 4 cars at most)."""
        p = data.draw(st.sampled_from(self.state.pending))
        body: Message = Ok(result=Done(detail="stored")) if takes_it else Error(code=Code.LIMIT_REACHED.value, message="full")
        self.fire_due()
        if p not in self.state.pending:
            return  # it timed out first
        before = self.state
        env = Envelope(body, sender="user:" + p.account, target=before.address, id=p.request_id, ts=self.now)
        self.state, outbox = VEHICLE.step(before, env, self.now)
        assert (p.requester, p.request_id) in self.awaiting
        self.account_for(outbox)  # the owner's answer (which may be to this very phone), nothing else
        assert (p.requester, p.request_id) not in self.awaiting, "the owner never heard back"

    @rule(account=st.sampled_from((*CAST, STRANGER)), request_id=st.integers(0, 40), takes_it=st.booleans())
    def stray_answer(self, account: str, request_id: int, takes_it: bool) -> None:
        """An answer to nothing pending (late, duplicated or forged) changes nothing and is not answered."""
        self.fire_due()
        if any(p.account == account and p.request_id == request_id for p in self.state.pending):
            return
        body: Message = Ok(result=Done()) if takes_it else Error(code=Code.TIMEOUT.value, message="late")
        before = self.state
        after, outbox = VEHICLE.step(before, Envelope(body, sender="user:" + account, target=before.address, id=request_id, ts=self.now), self.now)
        assert after == before and outbox == []

    @precondition(lambda self: self.state.contract.owner is None and self.state.contract.handover is not HandoverStage.CANCELLED)
    @rule(account=st.sampled_from((*CAST, NEWCOMER)), plan=st.sampled_from(list(Plan)), navi=st.booleans())
    def someone_signs_up(self, account: str, plan: Plan, navi: bool) -> None:
        self.fire_due()
        if self.known_bug(ContractPlan(plan=plan)):
            return
        _, after, mine, _ = self.deliver("user:" + account, ContractPlan(plan=plan, navi_package=navi))
        assert isinstance(mine[0].body, Ok) and after.contract.owner == account

    @precondition(lambda self: self.state.contract.owner is not None and bool(personal_strings(self.state) - {self.state.contract.owner}))
    @rule()
    def hand_over(self) -> None:
        """Sell the car in the guide's order, then a newcomer buys it and reads everything."""
        owner = self.state.contract.owner
        assert owner is not None
        self.fire_due()
        old = self.state
        personal = personal_strings(old) - {NEWCOMER}
        for step in (HandoverDeleteKeys(), ContractCancel()):
            _, _, mine, _ = self.deliver("user:" + owner, step)
            assert isinstance(mine[0].body, Ok), mine
        _, wiped, mine, _ = self.deliver("user:" + owner, HandoverWipe())
        assert isinstance(mine[0].body, Ok), mine
        assert wiped.contract == ContractState(handover=HandoverStage.WIPED)
        assert wiped.shares == () and wiped.keys == () and wiped.pending == () and wiped.drivers == ()
        assert wiped.active_driver is None and wiped.applied_profile is None and not wiped.alert_prefs
        assert wiped.climate.settings == ClimateSettings() and wiped.climate.schedules == ()
        assert wiped.security == SecurityState()
        assert wiped.status.position.value is None and wiped.status.last_acc_off.value is None
        assert wiped.reported_view is None
        assert not self.awaiting
        left = mentions(repr(wiped), personal)
        assert not left, f"after the hand-over the car still holds {left}"
        self.deliver("user:" + NEWCOMER, ContractPlan(plan=Plan.STANDARD, navi_package=True))
        for read in READS:
            _, _, _, outbox = self.deliver("user:" + NEWCOMER, read)
            left = mentions(repr(outbox), personal)
            assert not left, f"the new owner can read {left} with {read}"

    # --- time --------------------------------------------------------------------------------

    @rule(dt=dts)
    def time_passes(self, dt: float) -> None:
        self.now += dt
        self.fire_due()

    @precondition(lambda self: VEHICLE.next_deadline(self.state) is not None)
    @rule(before=st.booleans())
    def until_the_next_deadline(self, before: bool) -> None:
        due = VEHICLE.next_deadline(self.state)
        assert due is not None
        self.now = max(self.now, due - 0.001 if before else due)
        self.fire_due()
        if not before:
            nxt = VEHICLE.next_deadline(self.state)
            assert nxt is None or nxt > self.now, "a deadline fired and stayed due"

    # --- invariants --------------------------------------------------------------------------

    @invariant()
    def climate_within_duration_and_cap(self) -> None:
        c = self.state.climate
        cap = cap_s(self.state)
        assert c.used_s <= cap + EPS, f"used {c.used_s} s of a {cap} s cap"
        if c.running:
            assert c.ends_at is not None and c.started_at is not None
            run = c.ends_at - c.started_at
            assert 0 < run <= 20 * 60 + EPS, f"a run of {run} s"
            assert c.used_s + run <= cap + 1e-3, f"a run of {run} s after {c.used_s} s goes past the {cap} s cap"
        assert 16.0 <= c.settings.temperature_c <= 32.0
        assert len(c.schedules) <= DEFAULT_CONFIG.max_climate_schedules

    @invariant()
    def limits(self) -> None:
        s = self.state
        assert len(s.shares) <= 5 and len(s.keys) <= 5 and len(s.drivers) <= 3
        for accounts in ([x.account for x in s.shares], [k.account for k in s.keys], [d.account for d in s.drivers]):
            assert len(accounts) == len(set(accounts))
        assert len({k.key_id for k in s.keys}) == len(s.keys)
        assert all(k.key_id < s.next_key_id for k in s.keys)
        assert s.contract.owner is None or share_of(s, s.contract.owner) is None
        if s.contract.plan is not None:
            assert len(s.wifi.devices) <= DEFAULT_CONFIG.wifi_devices[s.contract.plan]

    @invariant()
    def contract_is_consistent(self) -> None:
        s = self.state
        c = s.contract
        if c.owner is None:
            assert c.plan is None and not s.shares and not s.keys and not s.pending and not s.alert_prefs
        if c.plan is Plan.LITE:
            assert not c.navi_package and not c.dashcam
        if c.dashcam:
            assert s.info.has_dashcam

    @invariant()
    def every_request_is_answered_once(self) -> None:
        """What still awaits an answer is exactly what waits on a phone."""
        waiting = {(p.requester, p.request_id) for p in self.state.pending}
        assert waiting == self.awaiting
        for p in self.state.pending:
            if p.kind == "key":
                assert any(k.key_id == p.key_id and not k.active for k in self.state.keys)
            else:
                assert share_of(self.state, p.account) is not None


def members(state: VehicleState) -> set[str]:
    """The owner and the accepted sharees: the only people the car's alerts are for."""
    out = {s.account for s in state.shares if s.accepted}
    return out | {state.contract.owner} if state.contract.owner else out


def check_recipients(before: VehicleState, after: VehicleState, outbox: list[Envelope]) -> None:
    """Alerts reach only the owner and accepted sharees; state pushes only those allowed a remote check."""
    for env in outbox:
        account = env.target.partition(":")[2]
        if isinstance(env.body, Alert):
            assert account in members(before) | members(after), f"an alert to {account}, who does not share the car: {env}"
        elif isinstance(env.body, StateChanged):
            allowed = {
                s.account for state in (before, after) for s in state.shares if s.accepted and SharedFunction.REMOTE_CHECK in s.functions
            } | {state.contract.owner for state in (before, after) if state.contract.owner}
            assert account in allowed, f"a state push to {account}, who may not check the car: {env}"


def personal_strings(state: VehicleState) -> set[str]:
    """Every account and piece of personal data the car holds for its owner and their circle."""
    out: set[str] = set()
    c = state.contract
    out.update(a for a in (c.owner, c.former_owner) if a)
    out.update(s.account for s in state.shares)
    out.update(k.account for k in state.keys)
    out.update(state.alert_prefs)
    for d in state.drivers:
        out.update((d.account, d.name, *d.profile.search_history))
    if state.security.police_report:
        out.add(state.security.police_report)
    return {s for s in out if s.strip()}


def mentions(text: str, strings: set[str]) -> set[str]:
    return {s for s in strings if repr(s) in text or repr("user:" + s) in text or repr("app:" + s) in text}


VehicleMachine.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestVehicleMachine = VehicleMachine.TestCase
