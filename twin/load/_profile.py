"""Load profiles: what the app users send (a weighted command mix) and how busy the cars are.

A profile is a small TOML file (see `examples/load/`):

    rate_per_app = 2.0          # commands per second per app user (open loop, Poisson arrivals)
    [commands]                  # relative weights of each command
    remote_check = 40
    lock = 20
    ...
    [cars]
    events_per_car_per_min = 2  # steps of each car's day (doors, ignition, driving, parking)
    alarm_share = 0.05          # share of those steps that are an alarm going off instead

`--rate` on the command line overrides `rate_per_app`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from twin.protocol import (
    ClimateStart,
    ClimateStop,
    FlashHazards,
    GetVehicleInfo,
    Locate,
    Lock,
    Message,
    RemoteCheck,
    ShareInvite,
    ShareList,
    ShareRevoke,
    Unlock,
)

__all__ = ["COMMANDS", "DEFAULT_PROFILE", "Profile", "load_profile"]

#: Command name -> a builder of its body, given the sharee account the sender may share with.
COMMANDS: dict[str, Callable[[str], Message]] = {
    "remote_check": lambda other: RemoteCheck(),
    "lock": lambda other: Lock(),
    "unlock": lambda other: Unlock(),
    "climate_start": lambda other: ClimateStart(duration_min=10),
    "climate_stop": lambda other: ClimateStop(),
    "locate": lambda other: Locate(),
    "flash_hazards": lambda other: FlashHazards(),
    "vehicle_info": lambda other: GetVehicleInfo(),
    "share_list": lambda other: ShareList(),
    "share_invite": lambda other: ShareInvite(account=other),
    "share_revoke": lambda other: ShareRevoke(account=other),
}


@attrs.frozen
class Profile:
    commands: dict[str, float] = attrs.field(factory=lambda: {
        "remote_check": 40, "lock": 20, "unlock": 20, "climate_start": 5, "climate_stop": 3,
        "locate": 6, "share_invite": 3, "share_revoke": 3})
    rate_per_app: float = 2.0
    events_per_car_per_min: float = 2.0
    alarm_share: float = 0.05

    def __attrs_post_init__(self) -> None:
        unknown = sorted(set(self.commands) - set(COMMANDS))
        if unknown:
            raise ValueError(f"unknown command(s) in the profile: {', '.join(unknown)}; known: {', '.join(COMMANDS)}")
        if not self.commands or sum(self.commands.values()) <= 0 or min(self.commands.values()) < 0:
            raise ValueError("the profile's [commands] need weights >= 0 with a positive sum")
        if not 0 <= self.alarm_share <= 1:
            raise ValueError("alarm_share is a share between 0 and 1")

    def to_plain(self) -> dict[str, Any]:
        return attrs.asdict(self)


DEFAULT_PROFILE = Profile()


def load_profile(path: str | Path) -> Profile:
    """Read a profile file; keys left out keep the defaults."""
    data = tomllib.loads(Path(path).read_text())
    cars = data.pop("cars", {})
    kwargs: dict[str, Any] = {}
    if "commands" in data:
        kwargs["commands"] = {str(k): float(v) for k, v in data.pop("commands").items()}
    if "rate_per_app" in data:
        kwargs["rate_per_app"] = float(data.pop("rate_per_app"))
    for key in ("events_per_car_per_min", "alarm_share"):
        if key in cars:
            kwargs[key] = float(cars.pop(key))
    left = sorted(set(data) | set(cars))
    if left:
        raise ValueError(f"{path}: unknown profile key(s): {', '.join(left)}")
    return Profile(**kwargs)
