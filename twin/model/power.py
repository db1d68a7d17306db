"""Ignition: what changes when the power goes OFF, ACC or ON.

ON resets the climate cap and ends a remote run, raises the start alert and finishes a
software update waiting for a restart. Leaving ACC/ON for OFF records the finder's last
ACC-OFF position, drops Wi-Fi devices and arms the "forgot" check.
"""

from __future__ import annotations

import attrs

from ..protocol import AlertType, IgnitionChanged, Power, Reading
from . import climate, software
from ._context import Ctx, alert
from ._dispatch import on
from ._state import VehicleState
from .security import reported


def ignition(state: VehicleState, power: Power, cx: Ctx) -> VehicleState:
    before = state.status.power.value
    now = cx.now
    status = attrs.evolve(state.status, power=Reading(power, now))
    if power is Power.OFF and before is not Power.OFF:
        status = attrs.evolve(status, last_acc_off=status.position, speed_kmh=0.0)
    state = reported(state, cx, status)
    if power is Power.ON and before is not Power.ON:
        state = climate.stop(state, now)
        state = attrs.evolve(state, climate=attrs.evolve(state.climate, used_s=0.0))
        if state.contract.plan is not None:
            alert(state, cx, AlertType.START, "the car was started", position=state.status.position.value)
        state = software.restarted(state, cx)
    if power is Power.OFF:
        state = attrs.evolve(
            state,
            wifi=attrs.evolve(state.wifi, devices=()),
            security=attrs.evolve(state.security, forgot_due_at=now + cx.config.forgot_delay_s if before is not Power.OFF else state.security.forgot_due_at),
        )
    else:
        state = attrs.evolve(state, security=attrs.evolve(state.security, forgot_due_at=None))
    return state


@on(IgnitionChanged)
def _ignition(state: VehicleState, msg: IgnitionChanged, cx: Ctx):  # type: ignore[no-untyped-def]
    return ignition(state, msg.power, cx), None
