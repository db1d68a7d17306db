"""The twin of one vehicle as an immutable value, and how a fresh one is made.

Rule 1: everything the vehicle model knows lives in `VehicleState`; nothing else is read by
`step`. States are frozen attrs values, so a refused command simply returns the old state, a
crashed actor restarts from its last good one, and a million passive cars can share every
default part (an untouched car costs little more than its top-level object).
"""

from __future__ import annotations

from typing import Mapping

import attrs

from ..protocol import (
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
from ..protocol import Message

__all__ = [
    "ClimateState",
    "ContractState",
    "Driver",
    "DigitalKey",
    "Actuation",
    "Pending",
    "SecurityState",
    "Share",
    "SoftwareState",
    "Status",
    "VehicleState",
    "WifiState",
    "new_vehicle",
]

#: The enum members in wire order, built once: iterating an Enum class is slow on a hot path.
DOORS: tuple[Door, ...] = tuple(Door)
WINDOWS: tuple[Window, ...] = tuple(Window)
DOOR_INDEX: dict[Door, int] = {d: i for i, d in enumerate(DOORS)}
WINDOW_INDEX: dict[Window, int] = {w: i for i, w in enumerate(WINDOWS)}

NEVER_FALSE: Reading[bool] = Reading(False)
NEVER_TRUE: Reading[bool] = Reading(True)
NEVER_ZERO_INT: Reading[int] = Reading(0)
NEVER_ZERO: Reading[float] = Reading(0.0)
NEVER_OFF: Reading[Power] = Reading(Power.OFF)
NEVER_NOWHERE: Reading[Position | None] = Reading(None)


@attrs.frozen
class Status:
    """What the car reports about itself, each value with the time it was reported."""

    doors_open: tuple[Reading[bool], ...] = (NEVER_FALSE,) * len(DOORS)
    windows_pct: tuple[Reading[int], ...] = (NEVER_ZERO_INT,) * len(WINDOWS)
    locked: Reading[bool] = NEVER_TRUE
    alarm_armed: Reading[bool] = NEVER_TRUE
    hazards: Reading[bool] = NEVER_FALSE
    power: Reading[Power] = NEVER_OFF
    position: Reading[Position | None] = NEVER_NOWHERE
    speed_kmh: float = 0.0
    last_acc_off: Reading[Position | None] = NEVER_NOWHERE
    level_pct: Reading[float] = NEVER_ZERO
    range_km: Reading[float] = NEVER_ZERO
    odometer_km: Reading[float] = NEVER_ZERO
    charging: bool = False
    occupied: bool = False

    def open_doors(self) -> list[Door]:
        return [door for door, r in zip(DOORS, self.doors_open) if r.value]

    def open_windows(self) -> list[Window]:
        return [w for w, r in zip(WINDOWS, self.windows_pct) if r.value > 0]


@attrs.frozen
class ContractState:
    owner: str | None = None
    plan: Plan | None = None
    navi_package: bool = False
    wifi: bool = False
    dashcam: bool = False
    started_at: float | None = None
    emergency_checked: bool = False
    handover: HandoverStage = HandoverStage.NONE
    former_owner: str | None = None


@attrs.frozen
class ClimateState:
    """Remote climate: the current run, the cumulative use since the last ignition ON, schedules."""

    started_at: float | None = None
    ends_at: float | None = None
    used_s: float = 0.0
    settings: ClimateSettings = ClimateSettings()
    schedules: tuple[ClimateSchedule, ...] = ()
    next_schedule_id: int = 1
    next_fire_at: float | None = None

    @property
    def running(self) -> bool:
        return self.started_at is not None


@attrs.frozen
class Share:
    account: str
    functions: frozenset[SharedFunction]
    accepted: bool = False


@attrs.frozen
class DigitalKey:
    key_id: int
    account: str
    active: bool = False


@attrs.frozen
class Driver:
    account: str
    name: str
    profile: DriverProfile


@attrs.frozen
class Pending:
    """A request waiting on another actor's answer (a key or share offer to a person's phone)."""

    kind: str  # "key" or "share"
    account: str
    requester: str
    request_id: int
    expires_at: float
    key_id: int = 0


@attrs.frozen
class Actuation:
    """An approved command the car's telematics unit was asked to carry out, under its own
    envelope id `actuation_id` towards `unit:<id>`; the requester's reply waits for the unit."""

    actuation_id: int
    requester: str
    request_id: int
    command: Message
    expires_at: float


@attrs.frozen
class SecurityState:
    alarm_sounded_at: float | None = None
    police_report: str | None = None
    forgot_due_at: float | None = None
    tracking: bool = False


@attrs.frozen
class SoftwareState:
    version: str = "1.0.0"
    offered: str | None = None
    stage: SoftwareStage = SoftwareStage.NONE
    stage_ends_at: float | None = None
    install_s: int = 600
    needs_restart: bool = True


@attrs.frozen
class WifiState:
    devices: tuple[str, ...] = ()
    usage_mb: tuple[tuple[int, int], ...] = ()  # (local day number, megabytes), recent days only


@attrs.frozen
class VehicleInfoData:
    """What the car is; fixed at manufacture (or registration)."""

    name: str = ""
    registration: str = ""
    model_code: str = ""
    inspection_expiry: str = ""
    powertrain: Powertrain = Powertrain.HYBRID
    has_digital_key: bool = True
    has_dashcam: bool = False
    has_remote_start_kit: bool = False
    tz_offset_s: int = 9 * 3600  # the guide's service is Japanese: JST by default


DEFAULT_INFO = VehicleInfoData()
DEFAULT_STATUS = Status()
DEFAULT_CLIMATE = ClimateState()
DEFAULT_SECURITY = SecurityState()
DEFAULT_SOFTWARE = SoftwareState()
DEFAULT_WIFI = WifiState()
NO_PREFS: Mapping[str, frozenset[tuple[AlertType, Channel]]] = {}


@attrs.frozen
class VehicleState:
    """The whole twin of one car. Treat every field, mappings included, as read-only."""

    vehicle_id: str
    info: VehicleInfoData = DEFAULT_INFO
    contract: ContractState = ContractState()
    status: Status = DEFAULT_STATUS
    reported_view: Status | None = None  # frozen snapshot while a Lite PHEV/BEV charges
    climate: ClimateState = DEFAULT_CLIMATE
    shares: tuple[Share, ...] = ()
    keys: tuple[DigitalKey, ...] = ()
    next_key_id: int = 1
    drivers: tuple[Driver, ...] = ()
    active_driver: str | None = None
    applied_profile: DriverProfile | None = None
    alert_prefs: Mapping[str, frozenset[tuple[AlertType, Channel]]] = NO_PREFS
    security: SecurityState = DEFAULT_SECURITY
    software: SoftwareState = DEFAULT_SOFTWARE
    wifi: WifiState = DEFAULT_WIFI
    pending: tuple[Pending, ...] = ()
    telematics: Telematics = Telematics.SIMULATED
    actuations: tuple[Actuation, ...] = ()
    next_actuation_id: int = 1

    @property
    def address(self) -> str:
        return "car:" + self.vehicle_id

    @property
    def unit(self) -> str:
        """The address of the car's telematics unit (its vehicle link)."""
        return "unit:" + self.vehicle_id


def new_vehicle(
    vehicle_id: str,
    *,
    owner: str | None = None,
    plan: Plan | None = Plan.STANDARD,
    powertrain: Powertrain = Powertrain.HYBRID,
    navi_package: bool = True,
    wifi: bool = False,
    dashcam: bool = False,
    has_digital_key: bool = True,
    has_dashcam: bool = False,
    has_remote_start_kit: bool = False,
    emergency_checked: bool = True,
    position: Position | None = None,
    name: str = "",
    registration: str = "",
    started_at: float | None = None,
    info: VehicleInfoData | None = None,
    telematics: Telematics = Telematics.SIMULATED,
) -> VehicleState:
    """A car as it leaves provisioning: linked to `owner` under `plan`, or unlinked if owner is None.

    Defaults are shared objects, so an untouched car costs only what differs from them.
    """
    if info is None:
        plain = (
            powertrain is DEFAULT_INFO.powertrain
            and has_digital_key
            and not has_dashcam
            and not has_remote_start_kit
            and not name
            and not registration
        )
        info = DEFAULT_INFO if plain else VehicleInfoData(
            name=name,
            registration=registration,
            model_code="",
            inspection_expiry="",
            powertrain=powertrain,
            has_digital_key=has_digital_key,
            has_dashcam=has_dashcam,
            has_remote_start_kit=has_remote_start_kit,
        )
    contract = ContractState(
        owner=owner,
        plan=plan if owner is not None else None,
        navi_package=navi_package and plan is Plan.STANDARD and owner is not None,
        wifi=wifi and owner is not None,
        dashcam=dashcam and owner is not None,
        started_at=started_at if owner is not None else None,
        emergency_checked=emergency_checked and owner is not None,
    )
    status = DEFAULT_STATUS if position is None else Status(position=Reading(position), last_acc_off=Reading(position))
    return VehicleState(vehicle_id, info=info, contract=contract, status=status, telematics=telematics)
