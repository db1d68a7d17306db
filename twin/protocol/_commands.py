"""Commands a person's app (or the centre's operator desk) sends to a car or to the operator.

Authorization is not decided here: the hub stamps the sender, the vehicle model decides from
the sender's role whether the command may run.
"""

from __future__ import annotations

import attrs

from ._base import Message, register
from ._values import (
    ALL_SHARED_FUNCTIONS,
    AlertType,
    Channel,
    ClimateSettings,
    DriverProfile,
    KeyAction,
    Plan,
    SharedFunction,
)

C = "command"

# --- remote operation, remote check, car finder, vehicle information (guide p.24-28, p.33)


@register("lock", C)
class Lock(Message):
    """Lock every door remotely. Refused, saying which, while a door is open."""


@register("unlock", C)
class Unlock(Message):
    """Unlock the doors remotely (owner only)."""


@register("set_hazards", C)
class SetHazards(Message):
    on: bool


@register("close_windows", C)
class CloseWindows(Message):
    pass


@register("flash_hazards", C)
class FlashHazards(Message):
    """Car finder: flash the hazard lights so the car can be spotted."""


@register("locate", C)
class Locate(Message):
    """Car finder: current position (Standard) or the last ACC-OFF position (Lite)."""


@register("remote_check", C)
class RemoteCheck(Message):
    """The last reported state of doors, locks, windows, alarm, each with its report time."""


@register("vehicle_info", C)
class GetVehicleInfo(Message):
    pass


# --- remote climate (p.16)


@register("climate_start", C)
class ClimateStart(Message):
    duration_min: int = 10
    settings: ClimateSettings | None = None


@register("climate_stop", C)
class ClimateStop(Message):
    pass


@register("climate_get", C)
class ClimateGet(Message):
    """Read the remote climate status: running or not, until when, minutes used under the cap,
    the settings and the schedules (answered with a `climate` result)."""


@register("climate_settings", C)
class ClimateSettingsSet(Message):
    settings: ClimateSettings


@register("climate_schedule_add", C)
class ClimateScheduleAdd(Message):
    weekdays: tuple[int, ...]
    at: str
    duration_min: int = 10


@register("climate_schedule_remove", C)
class ClimateScheduleRemove(Message):
    schedule_id: int


# --- alert settings (p.24-27): per recipient (the sender), per type and channel


@register("alert_settings_set", C)
class AlertSettingsSet(Message):
    alert: AlertType
    channel: Channel
    enabled: bool


@register("alert_settings_get", C)
class AlertSettingsGet(Message):
    pass


# --- sharing remote operation (p.32-35)


@register("share_invite", C)
class ShareInvite(Message):
    account: str
    functions: frozenset[SharedFunction] = ALL_SHARED_FUNCTIONS


@register("share_accept", C)
class ShareAccept(Message):
    pass


@register("share_decline", C)
class ShareDecline(Message):
    pass


@register("share_revoke", C)
class ShareRevoke(Message):
    account: str


@register("share_list", C)
class ShareList(Message):
    pass


# --- digital key (p.19)


@register("key_issue", C)
class KeyIssue(Message):
    """Hand a digital key for this car to `account`'s phone."""

    account: str


@register("key_revoke", C)
class KeyRevoke(Message):
    key_id: int


@register("key_release", C)
class KeyRelease(Message):
    """The holder gives up their own key for this car, as deleting the app does; the owner is told."""


@register("key_list", C)
class KeyList(Message):
    pass


@register("key_use", C)
class KeyUse(Message):
    """The phone used as a key near the car: lock, unlock or start."""

    action: KeyAction


# --- driver profiles, "my settings" (p.15)


@register("driver_register", C)
class DriverRegister(Message):
    account: str
    name: str
    profile: DriverProfile = attrs.field(factory=DriverProfile)


@register("driver_remove", C)
class DriverRemove(Message):
    account: str


@register("driver_update", C)
class DriverUpdate(Message):
    account: str
    profile: DriverProfile


@register("driver_list", C)
class DriverList(Message):
    pass


# --- software update (p.31)


@register("software_update_accept", C)
class SoftwareUpdateAccept(Message):
    """Accept the terms of the offered version: the download, then the install, start."""

    version: str


# --- contract (p.8, p.38-39) and hand-over (p.40)


@register("contract_plan", C)
class ContractPlan(Message):
    """Sign up for, or change, the plan. On a car with no owner the sender becomes its owner."""

    plan: Plan
    navi_package: bool = False


@register("contract_options", C)
class ContractOptions(Message):
    wifi: bool = False
    dashcam: bool = False


@register("contract_cancel", C)
class ContractCancel(Message):
    """Cancel the contract (step 2 of a hand-over): unlinks the owner, ends options, sharing, alerts."""


@register("contract_get", C)
class ContractGet(Message):
    pass


@register("handover_delete_keys", C)
class HandoverDeleteKeys(Message):
    """Step 1 of a hand-over: delete every digital key of the car."""


@register("handover_wipe", C)
class HandoverWipe(Message):
    """Step 3 of a hand-over: wipe driver profiles and personal settings."""


# --- operator desk (p.22, p.24-28)


@register("police_report", C)
class PoliceReport(Message):
    """The owner tells the centre a police report was filed (enables tracking and guards)."""

    report_no: str


@register("tracking_request", C)
class TrackingRequest(Message):
    pass


@register("guard_request", C)
class GuardRequest(Message):
    pass


@register("guard_extension_answer", C)
class GuardExtensionAnswer(Message):
    """Sent to `operator`: the owner's answer to the one-hour extension prompt."""

    car: str
    extend: bool


@register("wifi_status", C)
class WifiStatus(Message):
    """In-car Wi-Fi option: connected devices and whether the day is throttled."""
