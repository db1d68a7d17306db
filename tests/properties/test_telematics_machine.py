"""A hypothesis state machine over a linked car: the twin decides, the unit carries out.

Synchronous, on the pure model (`VEHICLE.step` / `advance`), virtual time only. The machine
plays the owner's app, the car's telematics unit (answers the oldest actuation `ok` or
`error`, or stays silent) and the hub (the link attaches and drops). After every step:

- every request gets exactly one reply: at once, or once the unit answers, times out or drops;
- an actuating command changes nothing until the unit confirms it, and nothing is sent to the
  unit while the car is offline;
- an `error` from the unit, a timeout or a drop leave the car's status as it was;
- the twin's pending actuations are exactly those the unit has not answered and that are not
  yet due, and each was sent to the unit once.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from twin.errors import Code
from twin.model import VEHICLE, VehicleState, new_vehicle
from twin.protocol import (
    ClimateStart,
    ClimateStop,
    CloseWindows,
    CoverageChanged,
    Door,
    DoorChanged,
    Done,
    Envelope,
    Error,
    FlashHazards,
    Lock,
    Message,
    Ok,
    RemoteCheck,
    SetHazards,
    Telematics,
    Unlock,
)

EPOCH = 1_767_225_600.0
OWNER = "user:alice"
COMMANDS = [Lock(), Unlock(), SetHazards(on=False), CloseWindows(), FlashHazards(), ClimateStart(duration_min=10), ClimateStop(), RemoteCheck()]


class LinkedCar(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.state: VehicleState
        self.now = EPOCH
        self.next_id = 1
        self.waiting: set[int] = set()  # owner's request ids not answered yet
        self.sent: dict[int, int] = {}  # actuation id -> owner's request id, not answered by the unit yet

    @initialize(online=st.booleans())
    def a_linked_car(self, online: bool) -> None:
        self.state = new_vehicle("c1", owner="alice", telematics=Telematics.ONLINE if online else Telematics.OFFLINE)

    def settle(self, outbox: list[Envelope]) -> None:
        """Account for every frame of an outbox: replies to the owner, actuations to the unit."""
        for env in outbox:
            if env.target == self.state.unit:
                assert self.state.telematics is Telematics.ONLINE, f"sent {env.body} to an offline car's unit"
                assert env.body.KIND == "command" and env.id not in self.sent
                request = next(a.request_id for a in self.state.actuations if a.actuation_id == env.id)
                self.sent[env.id] = request
            elif env.target == OWNER and env.body.KIND == "reply":
                assert env.id in self.waiting, f"a second reply, or one nobody asked for: {env}"
                self.waiting.discard(env.id)

    def step(self, sender: str, body: Message, corr: int) -> tuple[VehicleState, VehicleState, list[Envelope]]:
        self.state, fired = VEHICLE.advance(self.state, self.now)
        self.forget_answered()
        self.settle(fired)
        before = self.state
        after, outbox = VEHICLE.step(before, Envelope(body, sender=sender, target=before.address, id=corr, ts=self.now), self.now)
        self.state = after
        self.settle(outbox)
        return before, after, outbox

    def forget_answered(self) -> None:
        pending = {a.actuation_id for a in self.state.actuations}
        for actuation in list(self.sent):
            if actuation not in pending:  # timed out or dropped: the twin let it go
                del self.sent[actuation]

    @rule(command=st.sampled_from(COMMANDS))
    def owner_commands(self, command: Message) -> None:
        corr = self.next_id
        self.next_id += 1
        self.waiting.add(corr)
        before, after, outbox = self.step(OWNER, command, corr)
        answered = corr not in self.waiting
        forwarded = any(e.target == before.unit for e in outbox)
        assert answered != forwarded, f"{command}: answered={answered} forwarded={forwarded}"
        if forwarded:
            assert after.status == before.status and after.climate == before.climate, "acted before the car confirmed"
        if answered and before.telematics is Telematics.OFFLINE and command != RemoteCheck():
            reply = next(e.body for e in outbox if e.id == corr)
            assert isinstance(reply, Error) and reply.code == Code.OFFLINE.value

    @precondition(lambda self: bool(self.sent))
    @rule(ok=st.booleans(), data=st.data())
    def unit_answers(self, ok: bool, data: st.DataObject) -> None:
        actuation = data.draw(st.sampled_from(sorted(self.sent)))
        request = self.sent.pop(actuation)
        body: Message = Ok(result=Done(detail="done")) if ok else Error(code=Code.ACTUATION_FAILED.value, message="jammed")
        due = VEHICLE.next_deadline(self.state)
        before, after, _ = self.step(self.state.unit, body, actuation)
        still_there = due is None or due > self.now
        if still_there and request in self.waiting:
            raise AssertionError(f"the unit answered actuation {actuation} and request {request} is still unanswered")
        if not ok:
            assert after.status == before.status and after.climate == before.climate

    @rule(door=st.sampled_from(list(Door)), open=st.booleans())
    def the_car_senses(self, door: Door, open: bool) -> None:
        self.step(self.state.unit, DoorChanged(door=door, open=open), 0)

    @rule(online=st.booleans())
    def the_link_comes_and_goes(self, online: bool) -> None:
        before, after, _ = self.step("hub", CoverageChanged(online=online), 0)
        assert after.telematics is (Telematics.ONLINE if online else Telematics.OFFLINE)
        if not online:
            assert after.actuations == () and after.status == before.status
            self.sent.clear()

    @rule(dt=st.sampled_from([0.5, 2.0, 5.0, 60.0]))
    def time_passes(self, dt: float) -> None:
        self.now += dt
        self.state, fired = VEHICLE.advance(self.state, self.now)
        self.forget_answered()
        self.settle(fired)

    @invariant()
    def every_request_is_answered_or_in_flight(self) -> None:
        if not hasattr(self, "state"):
            return
        in_flight = {a.request_id for a in self.state.actuations}
        assert self.waiting == in_flight, (self.waiting, in_flight)
        assert set(self.sent) == {a.actuation_id for a in self.state.actuations}


TestLinkedCar = LinkedCar.TestCase
TestLinkedCar.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
