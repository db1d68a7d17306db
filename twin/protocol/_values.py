"""Enumerations and small value classes shared by messages and the vehicle model."""

from __future__ import annotations

import enum
from typing import Generic, TypeVar

import attrs

T = TypeVar("T")


class Plan(str, enum.Enum):
    """The contract plan. STANDARD's ★ services need the navi package; LITE includes them."""

    STANDARD = "standard"
    LITE = "lite"


class Powertrain(str, enum.Enum):
    PETROL = "petrol"
    HYBRID = "hybrid"
    PHEV = "phev"
    BEV = "bev"

    @property
    def plugs_in(self) -> bool:
        return self in (Powertrain.PHEV, Powertrain.BEV)


class Power(str, enum.Enum):
    """Ignition / power state."""

    OFF = "off"
    ACC = "acc"
    ON = "on"


class Door(str, enum.Enum):
    FRONT_LEFT = "front_left"
    FRONT_RIGHT = "front_right"
    REAR_LEFT = "rear_left"
    REAR_RIGHT = "rear_right"
    TRUNK = "trunk"


class Window(str, enum.Enum):
    FRONT_LEFT = "front_left"
    FRONT_RIGHT = "front_right"
    REAR_LEFT = "rear_left"
    REAR_RIGHT = "rear_right"


class AlertType(str, enum.Enum):
    """What an alert is about; each is switched on or off per recipient and channel."""

    ALARM = "alarm"
    START = "start"
    FORGOT_LOCK = "forgot_lock"
    FORGOT_HAZARDS = "forgot_hazards"
    FORGOT_WINDOWS = "forgot_windows"
    DASHCAM = "dashcam"
    SOFTWARE = "software"
    CLIMATE = "climate"
    DIGITAL_KEY = "digital_key"


class Channel(str, enum.Enum):
    EMAIL = "email"
    PUSH = "push"


class SharedFunction(str, enum.Enum):
    """What an owner can share with a sharee (guide p.32)."""

    REMOTE_CHECK = "remote_check"
    REMOTE_CLIMATE = "remote_climate"
    REMOTE_OPERATION = "remote_operation"
    CAR_FINDER = "car_finder"
    VEHICLE_INFO = "vehicle_info"


ALL_SHARED_FUNCTIONS: frozenset[SharedFunction] = frozenset(SharedFunction)


class Role(str, enum.Enum):
    """Who a sender is to a car; decides what it may do."""

    OWNER = "owner"
    SHAREE = "sharee"
    KEY_HOLDER = "key_holder"
    STRANGER = "stranger"
    VEHICLE = "vehicle"
    CENTRE = "centre"


class Telematics(str, enum.Enum):
    """How a car's telematics unit is reached: `simulated` cars are carried out by the twin
    itself (demos, tests); a linked car is `online` while its vehicle link is attached and
    `offline` while it is not (out of coverage, switched off, never connected)."""

    SIMULATED = "simulated"
    ONLINE = "online"
    OFFLINE = "offline"


class KeyAction(str, enum.Enum):
    LOCK = "lock"
    UNLOCK = "unlock"
    START = "start"


class ClipTrigger(str, enum.Enum):
    IMPACT = "impact"
    AIRBAG = "airbag"
    MANUAL = "manual"
    ALARM = "alarm"


class SoftwareStage(str, enum.Enum):
    NONE = "none"
    AVAILABLE = "available"
    DOWNLOADING = "downloading"
    INSTALLING = "installing"
    RESTART_REQUIRED = "restart_required"
    DONE = "done"


class HandoverStage(str, enum.Enum):
    """Selling the car, in the guide's order (p.40)."""

    NONE = "none"
    KEYS_DELETED = "keys_deleted"
    CANCELLED = "cancelled"
    WIPED = "wiped"


@attrs.frozen
class Reading(Generic[T]):
    """A reported value with the POSIX time it was reported (`None`: never reported)."""

    value: T
    at: float | None = None


@attrs.frozen
class Position:
    lat: float
    lon: float


@attrs.frozen(kw_only=True)
class ClimateSettings:
    """Remote climate settings (guide p.16)."""

    temperature_c: float = 22.0
    front_defroster: bool = False
    rear_defroster: bool = False
    seat_heaters: bool = False
    seat_ventilation: bool = False
    steering_heater: bool = False


@attrs.frozen(kw_only=True)
class DriverProfile:
    """A driver's "my settings" (guide p.15): applied to the car when the driver is identified."""

    map_orientation: str = "north_up"
    map_mode: str = "2d"
    search_history: tuple[str, ...] = ()
    keyboard: str = "kana"
    nav_volume: int = 5
    seat_position: int = 5


@attrs.frozen(kw_only=True)
class ClimateSchedule:
    """Start remote climate at `at` ("HH:MM", the car's local time) on the given weekdays (0=Monday)."""

    schedule_id: int
    weekdays: tuple[int, ...]
    at: str
    duration_min: int = 10
