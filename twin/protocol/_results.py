"""What an `Ok` reply carries: the resulting state, shaped per command family.

Every reported value is a `Reading` with the time the car reported it, so a client never
mistakes stale data for live.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, ClassVar, TypeVar, Union, dataclass_transform

import attrs

from ._values import (
    AlertType,
    Channel,
    ClimateSchedule,
    ClimateSettings,
    Door,
    DriverProfile,
    HandoverStage,
    Plan,
    Position,
    Power,
    Powertrain,
    Reading,
    SharedFunction,
    SoftwareStage,
    Telematics,
    Window,
)


class Result:
    """Base of reply results; `TYPE` tags the union on the wire."""

    __slots__ = ()
    TYPE: ClassVar[str] = ""
    if TYPE_CHECKING:  # every result is an attrs class: `attrs.fields` accepts it
        __attrs_attrs__: ClassVar[Any]


_RESULTS: list[type[Result]] = []


R = TypeVar("R", bound=type[Any])


@dataclass_transform(frozen_default=True, kw_only_default=True)
def _result(tag: str) -> Callable[[R], R]:
    def wrap(cls: R) -> R:
        cls.TYPE = tag
        out = attrs.frozen(kw_only=True)(cls)
        _RESULTS.append(out)
        return out

    return wrap


def result_types() -> tuple[type[Result], ...]:
    return tuple(_RESULTS)


@_result("done")
class Done(Result):
    detail: str = ""


@_result("climate")
class ClimateStatus(Result):
    running: bool
    started_at: float | None
    ends_at: float | None
    used_s: float
    cap_s: float
    source: str  # "engine" or "battery"
    settings: ClimateSettings
    schedules: tuple[ClimateSchedule, ...] = ()
    occupied_warning: bool = False


@_result("snapshot")
class Snapshot(Result):
    """Remote check: the state as last reported; frozen while a Lite PHEV/BEV charges."""

    doors_open: dict[Door, Reading[bool]]
    windows_pct: dict[Window, Reading[int]]
    locked: Reading[bool]
    alarm_armed: Reading[bool]
    hazards: Reading[bool]
    power: Reading[Power]
    climate_running: bool
    updates_paused: bool = False
    telematics: Telematics = Telematics.SIMULATED  # offline: every value is as old as its `at`


@_result("location")
class Location(Result):
    position: Reading[Position | None]
    kind: str  # "current" or "last_acc_off"


@_result("vehicle_info")
class VehicleInfo(Result):
    name: str
    registration: str
    model_code: str
    inspection_expiry: str
    powertrain: Powertrain
    plan: Plan | None
    power: Reading[Power]
    level_pct: Reading[float]
    range_km: Reading[float]
    odometer_km: Reading[float]
    software_version: str


@attrs.frozen(kw_only=True)
class Sharee:
    account: str
    functions: frozenset[SharedFunction]
    accepted: bool


@_result("sharing")
class Sharing(Result):
    sharees: tuple[Sharee, ...]


@attrs.frozen(kw_only=True)
class KeyInfo:
    key_id: int
    account: str
    active: bool  # False while the holder's phone has not taken it yet


@_result("keys")
class Keys(Result):
    keys: tuple[KeyInfo, ...]


@attrs.frozen(kw_only=True)
class DriverInfo:
    account: str
    name: str
    profile: DriverProfile


@_result("drivers")
class Drivers(Result):
    drivers: tuple[DriverInfo, ...]
    active: str | None = None


@_result("contract")
class Contract(Result):
    owner: str | None
    plan: Plan | None
    navi_package: bool
    wifi: bool
    dashcam: bool
    renews_at: float | None
    yearly_fee_jpy: int
    monthly_fee_jpy: int
    refund_jpy: int = 0
    signup_fee_jpy: int = 0  # charged by the change this answers: the Lite sign-up fee


@_result("alert_settings")
class AlertSettings(Result):
    enabled: frozenset[tuple[AlertType, Channel]]


@_result("software")
class Software(Result):
    version: str
    stage: SoftwareStage
    offered: str | None
    ready_at: float | None


@_result("handover")
class Handover(Result):
    stage: HandoverStage


@_result("tracking")
class Tracking(Result):
    active: bool
    position: Reading[Position | None]


@_result("wifi")
class Wifi(Result):
    devices: tuple[str, ...]
    throttled: bool


AnyResult = Union[
    Done, ClimateStatus, Snapshot, Location, VehicleInfo, Sharing, Keys, Drivers, Contract,
    AlertSettings, Software, Handover, Tracking, Wifi,
]
