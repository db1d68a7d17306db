"""Minimal examples of model bugs that the properties found, one function each.

Each function replays its example and returns True while the bug is still there.
`test_known_bugs.py` asserts each is gone under `xfail(strict=True)`, so a fix flips that test;
the state machine steers around a bug only while its function returns True, so the machine
starts checking that corner again on its own once the model is fixed.
"""

from __future__ import annotations

import functools

from twin.model import DEFAULT_CONFIG, VEHICLE, VehicleState, new_vehicle
from twin.protocol import ClimateStart, ContractPlan, Envelope, Message, Plan
from twin.scenarios import EPOCH, OWNER


def send(state: VehicleState, body: Message, now: float, sender: str = OWNER) -> VehicleState:
    state, _ = VEHICLE.step(state, Envelope(body, sender="user:" + sender, target=state.address, id=1, ts=now), now)
    return state


@functools.cache
def downgrade_leaves_used_time_above_the_cap() -> bool:
    """Standard with the navi package: a 10-minute and a 20-minute run (30 minutes used), then
    the owner switches to Lite, whose cap is 20 minutes. `used_s` stays at 1800 s, above the
    1200 s cap: the climate status reports 30 of 20 minutes used (the same happens when a new
    owner signs up for Lite after a hand-over, which keeps `used_s`)."""
    car = new_vehicle("c1", owner=OWNER, plan=Plan.STANDARD, navi_package=True)
    car = send(car, ClimateStart(duration_min=10), EPOCH)
    car = send(car, ClimateStart(duration_min=20), EPOCH + 600)
    car = send(car, ContractPlan(plan=Plan.LITE), EPOCH + 1800)
    return car.climate.used_s > DEFAULT_CONFIG.climate_cap_s[Plan.LITE]


@functools.cache
def downgrade_mid_run_counts_time_past_the_cap() -> bool:
    """Standard with the navi package: a 10-minute run, then a 20-minute run; 19 minutes into
    it the owner switches to Lite (cap 20 minutes, 10 already used). The run is stopped, but
    counted up to now: `used_s` becomes 1740 s, 540 s past the 1200 s cap, instead of stopping
    the count where the cap ran out."""
    car = new_vehicle("c1", owner=OWNER, plan=Plan.STANDARD, navi_package=True)
    car = send(car, ClimateStart(duration_min=10), EPOCH)
    car = send(car, ClimateStart(duration_min=20), EPOCH + 600)
    car = send(car, ContractPlan(plan=Plan.LITE), EPOCH + 600 + 19 * 60)
    return car.climate.used_s > DEFAULT_CONFIG.climate_cap_s[Plan.LITE]
