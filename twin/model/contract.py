"""Contract, options and handing the car over (guide p.8, p.38-40).

How this part works: a person signs up on a car with no owner and becomes its owner (joining
Lite pays its sign-up fee; the emergency unit must then pass its check again). Plans renew
yearly, options monthly; Lite offers no dashcam option; a plan change drops what the new plan
lacks (schedules, Wi-Fi devices past its limit, climate time past its cap). Cancelling (never
refunded mid-term) unlinks the owner and ends options, sharing, alert settings, tracking and
schedules, tells the operator desk to close the car's tracking and guard, and is refused
while digital keys remain. Selling goes in the guide's order: delete the keys, cancel, then
the former owner wipes driver profiles and settings; each step out of order is refused, and a
new owner can sign up only after the wipe, so nothing of the old owner is ever readable by the
next.
"""

from __future__ import annotations

import attrs

from ..errors import Code
from ..protocol import (
    Contract,
    ContractCancel,
    ContractGet,
    ContractOptions,
    ContractPlan,
    GarageChanged,
    Handover,
    HandoverDeleteKeys,
    HandoverStage,
    HandoverWipe,
    Plan,
    Role,
)
from . import climate, emergency, keys, security, sharing, wifi
from ._context import Ctx, refuse, require_owner
from ._dispatch import on
from ._state import (
    DEFAULT_CLIMATE,
    DEFAULT_SECURITY,
    DEFAULT_WIFI,
    NEVER_NOWHERE,
    NO_PREFS,
    ContractState,
    VehicleState,
)
from .config import ModelConfig


def contract(state: VehicleState, config: ModelConfig, refund: int = 0, signup: int = 0) -> Contract:
    c = state.contract
    yearly = config.lite_yearly_jpy if c.plan is Plan.LITE else 0
    monthly = (config.wifi_monthly_jpy if c.wifi else 0) + (config.dashcam_monthly_jpy if c.dashcam else 0)
    renews = c.started_at + config.contract_year_s if c.started_at is not None else None
    return Contract(
        owner=c.owner,
        plan=c.plan,
        navi_package=c.navi_package,
        wifi=c.wifi,
        dashcam=c.dashcam,
        renews_at=renews,
        yearly_fee_jpy=yearly,
        monthly_fee_jpy=monthly,
        refund_jpy=refund,
        signup_fee_jpy=signup,
    )


def _signup_fee(before: Plan | None, after: Plan, config: ModelConfig) -> int:
    """Joining the Lite plan (a new contract, or a change from Standard) pays its sign-up fee."""
    return config.lite_signup_jpy if after is Plan.LITE and before is not Plan.LITE else 0


def _no_step_back(state: VehicleState, cx: Ctx, step: str) -> None:
    """After cancelling, the former owner's only hand-over step left is the wipe."""
    c = state.contract
    if c.handover is HandoverStage.CANCELLED and cx.account is not None and cx.account == c.former_owner:
        raise refuse(Code.WRONG_ORDER, f"the contract is already cancelled, so {step} is done; wipe the personal data next (hand-over step 3)")


@on(ContractPlan)
def _plan(state: VehicleState, msg: ContractPlan, cx: Ctx):  # type: ignore[no-untyped-def]
    c = state.contract
    account = cx.account
    if account is None:
        raise refuse(Code.NOT_AUTHORIZED, "only a person's account can hold a contract")
    if c.owner is None:
        if c.handover is HandoverStage.CANCELLED:
            raise refuse(Code.WRONG_ORDER, "the previous owner's personal data must be wiped before a new contract")
        new = ContractState(owner=account, plan=msg.plan, navi_package=msg.navi_package and msg.plan is Plan.STANDARD, started_at=cx.now)
        state = climate.fit_run(security.sync_view(attrs.evolve(state, contract=new), cx), cx.now, cx.config)
        cx.send("user:" + account, GarageChanged(car=state.address, role=Role.OWNER, added=True))
        return state, contract(state, cx.config, signup=_signup_fee(None, msg.plan, cx.config))
    require_owner(state, cx, "change the plan")
    if msg.navi_package and msg.plan is Plan.LITE:
        raise refuse(Code.INVALID_VALUE, "the navi package is part of the Standard plan; Lite already includes its services")
    dashcam = c.dashcam and msg.plan is Plan.STANDARD
    state = attrs.evolve(state, contract=attrs.evolve(c, plan=msg.plan, navi_package=msg.navi_package, dashcam=dashcam))
    state = climate.keep_allowed_schedules(security.sync_view(state, cx))
    state = climate.fit_run(state, cx.now, cx.config)
    state = wifi.fit_devices(state, cx.config.wifi_devices[msg.plan])
    return state, contract(state, cx.config, signup=_signup_fee(c.plan, msg.plan, cx.config))


@on(ContractOptions)
def _options(state: VehicleState, msg: ContractOptions, cx: Ctx):  # type: ignore[no-untyped-def]
    require_owner(state, cx, "change the options")
    c = state.contract
    if msg.dashcam and c.plan is Plan.LITE:
        raise refuse(Code.NOT_IN_PLAN, "dashcam upload is not offered on the Lite plan")
    if msg.dashcam and not state.info.has_dashcam:
        raise refuse(Code.NOT_EQUIPPED, "this car has no dashcam")
    state = attrs.evolve(state, contract=attrs.evolve(c, wifi=msg.wifi, dashcam=msg.dashcam))
    if not msg.wifi:
        state = attrs.evolve(state, wifi=attrs.evolve(state.wifi, devices=()))
    return state, contract(state, cx.config)


@on(ContractGet)
def _get(state: VehicleState, msg: ContractGet, cx: Ctx):  # type: ignore[no-untyped-def]
    require_owner(state, cx, "read the contract")
    return state, contract(state, cx.config)


@on(ContractCancel)
def _cancel(state: VehicleState, msg: ContractCancel, cx: Ctx):  # type: ignore[no-untyped-def]
    _no_step_back(state, cx, "cancelling (step 2)")
    owner = require_owner(state, cx, "cancel the contract")
    if state.keys:
        raise refuse(Code.WRONG_ORDER, "delete the digital keys first (hand-over step 1), then cancel")
    for share in state.shares:
        state = sharing.revoke(state, share.account, cx)
    state = climate.stop(state, cx.now)
    state = attrs.evolve(
        state,
        contract=ContractState(handover=HandoverStage.CANCELLED, former_owner=owner),
        alert_prefs=NO_PREFS,
        pending=(),
        security=DEFAULT_SECURITY,
        wifi=attrs.evolve(state.wifi, devices=()),
    )
    state = security.sync_view(climate.clear_schedules(state), cx)
    cx.send("user:" + owner, GarageChanged(car=state.address, role=Role.OWNER, added=False))
    emergency.close_cases(state, cx)  # the desk's tracking and guard end with the contract
    return state, contract(state, cx.config)


@on(HandoverDeleteKeys)
def _delete_keys(state: VehicleState, msg: HandoverDeleteKeys, cx: Ctx):  # type: ignore[no-untyped-def]
    _no_step_back(state, cx, "deleting the digital keys (step 1)")
    require_owner(state, cx, "delete the digital keys")
    state = keys.delete_keys(state, list(state.keys), cx)
    state = attrs.evolve(state, contract=attrs.evolve(state.contract, handover=HandoverStage.KEYS_DELETED))
    return state, Handover(stage=HandoverStage.KEYS_DELETED)


@on(HandoverWipe)
def _wipe(state: VehicleState, msg: HandoverWipe, cx: Ctx):  # type: ignore[no-untyped-def]
    c = state.contract
    if c.handover is not HandoverStage.CANCELLED:
        if cx.account is not None and cx.account == c.owner:
            raise refuse(Code.WRONG_ORDER, "cancel the contract first (hand-over step 2), then wipe")
        raise refuse(Code.NOT_AUTHORIZED, "only the former owner may wipe the car's personal data")
    if cx.account is None or cx.account != c.former_owner:
        raise refuse(Code.NOT_AUTHORIZED, "only the former owner may wipe the car's personal data")
    status = attrs.evolve(state.status, position=NEVER_NOWHERE, last_acc_off=NEVER_NOWHERE, occupied=False)
    state = attrs.evolve(
        state,
        contract=ContractState(handover=HandoverStage.WIPED),
        status=status,
        reported_view=None,
        climate=attrs.evolve(DEFAULT_CLIMATE, used_s=state.climate.used_s),
        drivers=(),
        active_driver=None,
        applied_profile=None,
        alert_prefs=NO_PREFS,
        wifi=DEFAULT_WIFI,  # the old line's data usage would still throttle the next owner
    )
    return state, Handover(stage=HandoverStage.WIPED)
