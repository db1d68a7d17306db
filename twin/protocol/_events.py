"""Events a vehicle (its telematics module) reports about itself; only the car may send them."""

from __future__ import annotations

from ._base import Message, register
from ._values import ClipTrigger, Door, Power, Window

E = "event"


@register("door_changed", E)
class DoorChanged(Message):
    door: Door
    open: bool


@register("window_changed", E)
class WindowChanged(Message):
    window: Window
    position_pct: int  # 0 closed .. 100 fully open


@register("locked_by_key", E)
class LockedByKey(Message):
    """Locked or unlocked with the smart key or the handle."""

    locked: bool


@register("hazards_changed", E)
class HazardsChanged(Message):
    on: bool


@register("ignition_changed", E)
class IgnitionChanged(Message):
    power: Power


@register("position_reported", E)
class PositionReported(Message):
    lat: float
    lon: float
    speed_kmh: float = 0.0


@register("energy_reported", E)
class EnergyReported(Message):
    """Fuel (petrol, hybrid) or charge (PHEV, BEV) level, range and odometer."""

    level_pct: float
    range_km: float
    odometer_km: float


@register("charging_changed", E)
class ChargingChanged(Message):
    charging: bool


@register("alarm_sounding", E)
class AlarmSounding(Message):
    cause: str = "intrusion"


@register("impact", E)
class Impact(Message):
    """A strong impact; `delta_v_kmh` is the crash data the centre estimates severity from."""

    delta_v_kmh: float


@register("airbag_deployed", E)
class AirbagDeployed(Message):
    delta_v_kmh: float = 0.0
    cabin_answers: bool = False


@register("emergency_button", E)
class EmergencyButton(Message):
    cabin_answers: bool = True


@register("emergency_unit_check", E)
class EmergencyUnitCheck(Message):
    """The manual maintenance check after sign-up: the green lamp stayed lit when `passed`."""

    passed: bool


@register("dashcam_clip", E)
class DashcamClip(Message):
    trigger: ClipTrigger
    clip_id: str


@register("software_available", E)
class SoftwareAvailable(Message):
    version: str
    notes: str = ""
    install_s: int = 600
    needs_restart: bool = True


@register("key_near", E)
class KeyNear(Message):
    """A registered smart key or phone of `account` came near: identifies the driver."""

    account: str


@register("occupancy", E)
class Occupancy(Message):
    occupied: bool


@register("wifi_device", E)
class WifiDevice(Message):
    device_id: str
    joined: bool


@register("wifi_usage", E)
class WifiUsage(Message):
    megabytes: int
