"""The invariants every run keeps, whatever the steps: checked after each step of a replay and
of every `twin explore` example (docs/scenarios.md states them for people).

An `Observation` is what one step showed: the states of the actors it may have touched before
and after, the reply (or an event's refusal) and what apps and the operator desk received. It
holds plain values only, so a synchronous test over the pure model can build one from
`VEHICLE.step`'s outbox (`deliveries_from_outbox`) and use the same checks.

The checks are oracles written from the rules (docs/rules.md), not calls into the model's own helpers: "who may
do what" is a table here, so a rule that lets the wrong person through is caught rather than
agreed with.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from ..model import DEFAULT_ALERTS, DEFAULT_CONFIG, ModelConfig, OperatorState, UserState, VehicleState
from ..protocol import (
    Alert,
    AlertType,
    AlarmSounding,
    Channel,
    Envelope,
    Error,
    Lock,
    Ok,
    OperatorNotice,
    Plan,
    SharedFunction,
)
from ._format import ScenarioStep
from ._match import Check, Delivery, plain_state

__all__ = ["INVARIANTS", "Invariants", "Observation", "deliveries_from_outbox", "role_of"]

#: name -> what it promises (the names appear in failures and in docs/scenarios.md)
INVARIANTS: dict[str, str] = {
    "climate": "a remote climate run never lasts past its chosen duration, the plan's cumulative cap, or its own end",
    "roles": "no account gets an ok for a command beyond its role (owner, sharee and its functions, key holder, driver)",
    "refusal": "a refused command or event leaves the car's state untouched",
    "limits": "at most 5 sharees (invited or accepted), 5 digital keys and 3 drivers per car; a phone holds keys for at most 4 cars",
    "alarm": "every alarm yields exactly one alert per subscribed account and channel",
    "lock": "a remote lock leaves every door locked unless a door is open, and then says which; on Lite it never arms the alarm",
    "handover": (
        "after a hand-over's wipe nothing of the previous owner is left in the car or readable by anyone else;"
        " from the contract's cancel on, the operator desk holds no tracking or guard at the car in the previous"
        " owner's name and tells them nothing more about it than that their cases closed"
    ),
}

_OWNER_ONLY = frozenset({
    "unlock", "share_invite", "share_revoke", "share_list", "key_issue", "key_revoke", "key_list",
    "contract_options", "contract_cancel", "contract_get", "handover_delete_keys",
    "software_update_accept", "police_report", "tracking_request", "guard_request", "wifi_status",
})
_SHARED: dict[str, SharedFunction] = {
    "lock": SharedFunction.REMOTE_OPERATION,
    "set_hazards": SharedFunction.REMOTE_OPERATION,
    "close_windows": SharedFunction.REMOTE_OPERATION,
    "remote_check": SharedFunction.REMOTE_CHECK,
    "locate": SharedFunction.CAR_FINDER,
    "flash_hazards": SharedFunction.CAR_FINDER,
    "vehicle_info": SharedFunction.VEHICLE_INFO,
    "climate_start": SharedFunction.REMOTE_CLIMATE,
    "climate_stop": SharedFunction.REMOTE_CLIMATE,
    "climate_get": SharedFunction.REMOTE_CLIMATE,
    "climate_settings": SharedFunction.REMOTE_CLIMATE,
    "climate_schedule_add": SharedFunction.REMOTE_CLIMATE,
    "climate_schedule_remove": SharedFunction.REMOTE_CLIMATE,
}
_REFUSAL_MAY_CHANGE = frozenset({"share_invite", "key_issue"})  # a phone's refusal settles an offer
#: what an actuation the car failed or never confirmed leaves behind: the twin asked, no more
_ACTUATION_BOOKKEEPING = frozenset({"actuations", "next_actuation_id"})


@attrs.frozen
class Observation:
    """What one step showed. `before`/`after` map addresses to states (cars, users, operator)."""

    step: ScenarioStep
    now: float
    reply: Envelope | None
    deliveries: tuple[Delivery, ...]
    before: Mapping[str, Any]
    after: Mapping[str, Any]


def deliveries_from_outbox(outbox: Iterable[Envelope]) -> tuple[Delivery, ...]:
    """A pure model's outbox as deliveries (what `user:`/`app:` targets and the desk receive)."""
    out = []
    for env in outbox:
        if env.body.KIND == "reply":
            continue
        target = env.target
        if target.startswith(("user:", "app:")):
            out.append(Delivery(target.split(":", 1)[1], env))
        elif target == "operator":
            out.append(Delivery("operator", env))
    return tuple(out)


def role_of(state: VehicleState, account: str | None) -> str:
    """How `account` stands to the car, for messages: owner, sharee (functions), key holder ..."""
    if account is None:
        return "no account"
    roles = []
    if account == state.contract.owner:
        roles.append("owner")
    for share in state.shares:
        if share.account == account:
            shared = ",".join(sorted(f.value for f in share.functions))
            roles.append(f"sharee with {shared}" if share.accepted else "invited sharee")
    if any(k.account == account and k.active for k in state.keys):
        roles.append("key holder")
    if any(d.account == account for d in state.drivers):
        roles.append("driver")
    if account == state.contract.former_owner:
        roles.append("former owner")
    return " and ".join(roles) or "stranger"


def denied(tag: str, account: str | None, state: VehicleState, body: Any, operator: OperatorState | None = None) -> str | None:
    """Why the rules' roles forbid `account` to run command `tag` on this car (None: allowed).

    Commands this table does not know are allowed: a new command gets a line here with its rule.
    """
    if account is None:
        return "only a person's account sends commands"
    owner = state.contract.owner
    is_owner = account == owner
    share = next((s for s in state.shares if s.account == account), None)
    if tag in _OWNER_ONLY:
        return None if is_owner else "only the owner may"
    if tag in _SHARED:
        function = _SHARED[tag]
        if is_owner or (share is not None and share.accepted and function in share.functions):
            return None
        return f"only the owner or a sharee given {function.value} may"
    if tag in ("alert_settings_set", "alert_settings_get"):
        return None if is_owner or (share is not None and share.accepted) else "only the owner and sharees receive the car's alerts"
    if tag in ("share_accept", "share_decline"):
        return None if share is not None and not share.accepted else "only an invited account may answer an invitation"
    if tag == "key_use":
        return None if any(k.account == account and k.active for k in state.keys) else "only a holder of an active digital key may"
    if tag == "key_release":  # deleting the app deletes the key: a key offered and not yet answered too
        return None if any(k.account == account for k in state.keys) else "only the holder of a digital key may give it up"
    if tag == "contract_plan":
        return None if owner is None or is_owner else "only the owner may change the plan of an owned car"
    if tag == "handover_wipe":
        return None if account == state.contract.former_owner else "only the former owner may wipe"
    if tag == "driver_register":
        if not state.drivers:
            return None if is_owner else "the first driver registration is the owner's"
        drives = (share is not None and share.accepted) or any(k.account == account and k.active for k in state.keys)
        if is_owner or (getattr(body, "account", None) == account and drives):
            return None
        return "only the owner, or a sharee or key holder registering themself, may"
    if tag in ("driver_remove", "driver_update"):
        return None if is_owner or getattr(body, "account", None) == account else "only the owner or the driver themself may"
    if tag == "driver_list":
        return None if is_owner or any(d.account == account for d in state.drivers) else "only the owner and registered drivers may"
    return None


def _account(address: str | None) -> str | None:
    if address and address.startswith("user:"):
        return address[5:]
    return None


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, str):
                yield k
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


class Invariants:
    """Checks the INVARIANTS step by step; holds what spans steps (who handed a car over)."""

    def __init__(self, config: ModelConfig = DEFAULT_CONFIG) -> None:
        self.config = config
        self.wiped: dict[str, str] = {}  # car -> previous owner, after the hand-over's wipe
        self.cancelled: dict[str, tuple[str, float]] = {}  # car -> (owner who cancelled, when)

    def check(self, obs: Observation) -> list[Check]:
        """The failed invariants of this step (empty: all kept)."""
        failures: list[Check] = []
        for name, fn in (
            ("climate", self._climate),
            ("roles", self._roles),
            ("refusal", self._refusal),
            ("limits", self._limits),
            ("alarm", self._alarm),
            ("lock", self._lock),
            ("handover", self._handover),
        ):
            for summary, diff in fn(obs):
                failures.append(Check(obs.step.index, f"invariant {name}", False, summary, tuple(diff)))
        return failures

    # -- the checks; each yields (summary, diff lines)

    def _climate(self, obs: Observation) -> Iterable[tuple[str, list[str]]]:
        longest = max(self.config.climate_durations_min) * 60.0
        for address, after in obs.after.items():
            if not isinstance(after, VehicleState):
                continue
            c = after.climate
            if c.started_at is None or c.ends_at is None:
                continue
            length = c.ends_at - c.started_at
            if obs.now > c.ends_at:
                yield f"{address}: climate still running {obs.now - c.ends_at:g} s past its end", [f"- running until {c.ends_at}", f"+ still running at {obs.now}"]
            before = obs.before.get(address)
            fresh = not isinstance(before, VehicleState) or before.climate.started_at != c.started_at
            if not fresh:
                continue
            cap = self.config.climate_cap_s[after.contract.plan or Plan.STANDARD]
            if length > longest:
                yield f"{address}: a climate run of {length / 60:g} min is longer than the longest allowed ({longest / 60:g} min)", [f"- at most {longest:g} s", f"+ {length:g} s"]
            used = before.climate.used_s if isinstance(before, VehicleState) and before.contract.plan == after.contract.plan else c.used_s
            if used + length > cap + 1e-6:
                yield f"{address}: a climate run takes the cumulative use to {(used + length) / 60:g} min, past the {cap / 60:g} min cap", [f"- used + run <= {cap:g} s", f"+ {used:g} + {length:g} s"]
            body = obs.step.body
            if obs.step.kind == "send" and body is not None and body.TYPE == "climate_start" and obs.step.target == address:
                asked = body.duration_min * 60.0  # type: ignore[attr-defined]
                if length > asked:
                    yield f"{address}: climate started for {body.duration_min} min runs {length / 60:g} min", [f"- at most {asked:g} s", f"+ {length:g} s"]  # type: ignore[attr-defined]

    def _roles(self, obs: Observation) -> Iterable[tuple[str, list[str]]]:
        step, reply = obs.step, obs.reply
        if step.kind != "send" or reply is None or not isinstance(reply.body, Ok) or step.body is None:
            return
        account = _account(step.sender)
        tag = step.body.TYPE
        if step.target == "operator":
            op = obs.before.get("operator")
            car = getattr(step.body, "car", None)
            if tag == "guard_extension_answer" and isinstance(op, OperatorState):
                guard = op.guards.get(car)  # type: ignore[arg-type]
                if guard is None or guard.owner != account:
                    yield f"{account} answered the guard prompt for {car}, which is not theirs, and got ok", ["- refused: only the owner with a guard at the car", "+ ok"]
            return
        before = obs.before.get(step.target or "")
        if not isinstance(before, VehicleState):
            return
        reason = denied(tag, account, before, step.body)
        if reason is not None:
            role = role_of(before, account)
            yield f"{account} ({role}) got ok for {tag!r} on {step.target}: {reason}", [f"- error (refused: {reason})", f"+ ok ({type(reply.body.result).__name__})"]

    def _refusal(self, obs: Observation) -> Iterable[tuple[str, list[str]]]:
        step, reply = obs.step, obs.reply
        if step.kind not in ("send", "report") or reply is None or not isinstance(reply.body, Error) or step.body is None:
            return
        if step.body.TYPE in _REFUSAL_MAY_CHANGE:
            return
        before, after = obs.before.get(step.target or ""), obs.after.get(step.target or "")
        if isinstance(before, VehicleState) and isinstance(after, VehicleState):
            # a command the car's unit failed or never confirmed was sent to it: that much counts
            changed = [a.name for a in attrs.fields(VehicleState) if a.name not in _ACTUATION_BOOKKEEPING and getattr(before, a.name) != getattr(after, a.name)]
        else:
            changed = []
        if changed:
            yield f"{step.target} refused {step.body.TYPE!r} ({reply.body.code}) but its state changed: {', '.join(changed)}", [f"- unchanged {c}" for c in changed] + [f"+ changed {c}" for c in changed]

    def _limits(self, obs: Observation) -> Iterable[tuple[str, list[str]]]:
        cfg = self.config
        for address, after in obs.after.items():
            if isinstance(after, VehicleState):
                for what, n, limit in (
                    ("sharees", len(after.shares), cfg.max_sharees),
                    ("digital keys", len(after.keys), cfg.max_keys_per_car),
                    ("drivers", len(after.drivers), cfg.max_drivers),
                ):
                    if n > limit:
                        yield f"{address} has {n} {what}, over the limit of {limit}", [f"- at most {limit}", f"+ {n}"]
            elif isinstance(after, UserState) and len(after.key_cars) > cfg.max_cars_per_phone:
                yield f"{address}'s phone holds keys for {len(after.key_cars)} cars, over {cfg.max_cars_per_phone}", [f"- at most {cfg.max_cars_per_phone}", f"+ {len(after.key_cars)}"]

    def _alarm(self, obs: Observation) -> Iterable[tuple[str, list[str]]]:
        step = obs.step
        if step.kind != "report" or not isinstance(step.body, AlarmSounding) or obs.reply is not None:
            return
        before = obs.before.get(step.target or "")
        if not isinstance(before, VehicleState):
            return
        want: Counter[tuple[str, str]] = Counter()
        if before.contract.plan is not None:
            members = ([before.contract.owner] if before.contract.owner else []) + [s.account for s in before.shares if s.accepted]
            for account in members:
                prefs = before.alert_prefs.get(account, DEFAULT_ALERTS)
                for channel in Channel:
                    if (AlertType.ALARM, channel) in prefs:
                        want[(account, channel.value)] += 1
        got: Counter[tuple[str, str]] = Counter(
            (d.to, d.envelope.body.channel.value)
            for d in obs.deliveries
            if isinstance(d.envelope.body, Alert) and d.envelope.body.alert is AlertType.ALARM and d.envelope.body.car == step.target
        )
        if want != got:
            missing = sorted((want - got).elements())
            extra = sorted((got - want).elements())
            yield (
                f"{step.target}'s alarm: {len(missing)} alert(s) missing, {len(extra)} unexpected or repeated",
                [f"- {a} by {c}" for a, c in missing] + [f"+ {a} by {c}" for a, c in extra],
            )

    def _lock(self, obs: Observation) -> Iterable[tuple[str, list[str]]]:
        step, reply = obs.step, obs.reply
        if step.kind != "send" or not isinstance(step.body, Lock) or reply is None:
            return
        before, after = obs.before.get(step.target or ""), obs.after.get(step.target or "")
        if not isinstance(before, VehicleState) or not isinstance(after, VehicleState):
            return
        open_doors = [d.value for d in before.status.open_doors()]
        body = reply.body
        if isinstance(body, Ok):
            if open_doors:
                yield f"{step.target} locked remotely with {', '.join(open_doors)} open", ["- error door_open", "+ ok"]
            if not after.status.locked.value or after.status.open_doors():
                yield f"{step.target}: lock answered ok but the doors are not all locked", ["- locked = true", f"+ locked = {str(after.status.locked.value).lower()}"]
            if after.contract.plan is Plan.LITE and after.status.alarm_armed != before.status.alarm_armed:
                yield f"{step.target}: a remote lock on Lite changed the alarm", [f"- alarm_armed = {before.status.alarm_armed.value}", f"+ alarm_armed = {after.status.alarm_armed.value}"]
        elif isinstance(body, Error):
            if open_doors and body.code == "door_open":
                unnamed = [d for d in open_doors if d not in body.message]
                if unnamed:
                    yield (
                        f"{step.target}: lock refused as door_open without naming {', '.join(unnamed)}",
                        [f"- error door_open naming {', '.join(open_doors)}", f"+ error {body.code}: {body.message}"],
                    )
            elif not open_doors and body.code == "door_open":
                yield f"{step.target}: lock refused as door_open with every door closed", ["- no door_open refusal", f"+ {body.message}"]

    def _handover(self, obs: Observation) -> Iterable[tuple[str, list[str]]]:
        step, reply = obs.step, obs.reply
        ok = reply is not None and isinstance(reply.body, Ok)
        sender = _account(step.sender)
        if step.kind == "send" and ok and step.body is not None:
            tag = step.body.TYPE
            target = step.target or ""
            named = getattr(step.body, "account", None)
            for car, former in list(self.wiped.items()):
                if car == target and (former == named or (tag == "contract_plan" and sender == former)):
                    del self.wiped[car]  # the previous owner came back legitimately
            if tag == "contract_plan" and self.cancelled.get(target, ("", 0.0))[0] == sender:
                del self.cancelled[target]  # signed up again: the desk may hold their cases anew
            if tag == "contract_cancel":
                before = obs.before.get(target)
                owner = before.contract.owner if isinstance(before, VehicleState) else sender
                if owner:
                    self.cancelled[target] = (owner, obs.now)
            if tag == "handover_wipe":
                before = obs.before.get(target)
                if isinstance(before, VehicleState) and before.contract.former_owner:
                    self.wiped[target] = before.contract.former_owner
                after = obs.after.get(target)
                if isinstance(after, VehicleState) and (after.drivers or after.applied_profile is not None or after.alert_prefs):
                    yield f"{target}: the wipe left driver profiles or settings behind", ["- drivers = [], settings cleared", f"+ {len(after.drivers)} driver(s), prefs of {sorted(after.alert_prefs)}"]
        for car, former in self.wiped.items():
            after = obs.after.get(car)
            if isinstance(after, VehicleState) and former in set(_strings(plain_state(after))):
                yield f"{car} still holds data of its previous owner {former!r} after the hand-over", [f"- no trace of {former}", f"+ {former} found in the car's state"]
            if step.kind == "send" and ok and step.target == car and sender != former and reply is not None:
                from ._match import plain

                if former in set(_strings(plain(reply.body))):
                    yield f"{sender} read data of {car}'s previous owner {former!r} in a {step.body.TYPE!r} reply", [f"- no trace of {former}", f"+ {former} in the reply"]  # type: ignore[union-attr]
        yield from self._desk_after_cancel(obs)

    def _desk_after_cancel(self, obs: Observation) -> Iterable[tuple[str, list[str]]]:
        """The desk closes a car's cases with its contract (seen when the desk ran this step)."""
        desk = obs.after.get("operator")
        for car, (former, since) in self.cancelled.items():
            if isinstance(desk, OperatorState):
                held = ["tracking"] if desk.tracking.get(car) == former else []
                guard = desk.guards.get(car)
                if guard is not None and guard.owner == former:
                    held.append("a guard")
                if held:
                    what = " and ".join(held)
                    yield f"the operator desk still holds {what} at {car} for {former!r} after the contract was cancelled", [f"- no case at {car} in {former}'s name", f"+ {what} for {former}"]
            for d in obs.deliveries:
                body = d.envelope.body
                if d.to == former and isinstance(body, OperatorNotice) and body.car == car and body.at > since and body.kind != "cases_closed":
                    yield f"the operator desk sent {former!r} a {body.kind!r} about {car} after its contract was cancelled", ["- nothing after cases_closed", f"+ {body.kind}: {body.text}"]
