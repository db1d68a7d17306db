"""In-car Wi-Fi option (guide p.18): at most 5 devices on Lite, 10 on Standard, with ACC on;
throttled for the whole day when 6 GB or more were used in the 3 days before today."""

from __future__ import annotations

import attrs

from ..errors import Code
from ..protocol import Power, Wifi, WifiDevice, WifiStatus, WifiUsage
from ._context import Ctx, Service, refuse, require_owner, require_service
from ._dispatch import on
from ._state import VehicleState

DAY = 86400


def local_day(state: VehicleState, now: float) -> int:
    return int((now + state.info.tz_offset_s) // DAY)


def throttled(state: VehicleState, now: float, limit_mb: int) -> bool:
    today = local_day(state, now)
    used = sum(mb for day, mb in state.wifi.usage_mb if today - 3 <= day < today)
    return used >= limit_mb


def wifi(state: VehicleState, cx: Ctx) -> Wifi:
    return Wifi(devices=state.wifi.devices, throttled=throttled(state, cx.now, cx.config.wifi_throttle_mb))


@on(WifiStatus)
def _status(state: VehicleState, msg: WifiStatus, cx: Ctx):  # type: ignore[no-untyped-def]
    require_owner(state, cx, "read the Wi-Fi status")
    require_service(state, Service.WIFI)
    return state, wifi(state, cx)


@on(WifiDevice)
def _device(state: VehicleState, msg: WifiDevice, cx: Ctx):  # type: ignore[no-untyped-def]
    devices = state.wifi.devices
    if not msg.joined:
        return attrs.evolve(state, wifi=attrs.evolve(state.wifi, devices=tuple(d for d in devices if d != msg.device_id))), None
    require_service(state, Service.WIFI)
    if state.status.power.value is Power.OFF:
        raise refuse(Code.CONFLICT, "in-car Wi-Fi works with ACC or ignition on; the car is off")
    if msg.device_id in devices:
        return state, None
    limit = cx.config.wifi_devices[state.contract.plan]  # type: ignore[index]
    if len(devices) >= limit:
        raise refuse(Code.LIMIT_REACHED, f"at most {limit} Wi-Fi devices on this plan")
    return attrs.evolve(state, wifi=attrs.evolve(state.wifi, devices=devices + (msg.device_id,))), None


@on(WifiUsage)
def _usage(state: VehicleState, msg: WifiUsage, cx: Ctx):  # type: ignore[no-untyped-def]
    if msg.megabytes < 0:
        raise refuse(Code.INVALID_VALUE, "usage cannot be negative")
    today = local_day(state, cx.now)
    usage = {day: mb for day, mb in state.wifi.usage_mb if day >= today - 3}
    usage[today] = usage.get(today, 0) + msg.megabytes
    return attrs.evolve(state, wifi=attrs.evolve(state.wifi, usage_mb=tuple(sorted(usage.items())))), None


def fit_devices(state: VehicleState, limit: int) -> VehicleState:
    """After a plan change: the devices past the new plan's limit (the latest to join) are dropped."""
    if len(state.wifi.devices) <= limit:
        return state
    return attrs.evolve(state, wifi=attrs.evolve(state.wifi, devices=state.wifi.devices[:limit]))
