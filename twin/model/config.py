"""The numbers of the rules (docs/rules.md), in one configurable place; the defaults are the guide's."""

from __future__ import annotations

import attrs

from ..protocol import AlertType, Channel, Plan

__all__ = ["DEFAULT_ALERTS", "ModelConfig"]

#: Alerts on for a recipient who never changed a setting: alarm on, start off (guide p.24-27).
DEFAULT_ALERTS: frozenset[tuple[AlertType, Channel]] = frozenset(
    (alert, channel)
    for alert in AlertType
    if alert is not AlertType.START
    for channel in Channel
)


@attrs.frozen(kw_only=True)
class ModelConfig:
    """Limits and delays of the service. Where the guide is vague the default says so."""

    max_sharees: int = 5
    max_keys_per_car: int = 5
    max_cars_per_phone: int = 4
    max_drivers: int = 3
    climate_durations_min: tuple[int, ...] = (10, 20)
    climate_cap_s: dict[Plan, float] = attrs.field(factory=lambda: {Plan.STANDARD: 3600.0, Plan.LITE: 1200.0})
    max_climate_schedules: int = 7  # not in the guide: one a weekday plus one
    wifi_devices: dict[Plan, int] = attrs.field(factory=lambda: {Plan.STANDARD: 10, Plan.LITE: 5})
    wifi_throttle_mb: int = 6 * 1024  # over the 3 days before today
    forgot_delay_s: float = 300.0  # not in the guide: "after the driver leaves the car"
    eligibility_window_s: float = 24 * 3600.0  # an alarm this recent allows tracking / guards
    strong_impact_kmh: float = 15.0  # not in the guide: what counts as a "strong impact"
    helicopter_kmh: float = 50.0  # crash severity at which the centre sends a doctor helicopter
    guard_free_s: float = 3600.0
    guard_arrival_s: float = 1200.0  # not in the guide: time for a guard to reach the car
    guard_extension_s: float = 3600.0
    download_s: float = 300.0  # not in the guide; the install itself is the event's install_s
    offer_timeout_s: float = 30.0  # a phone that does not answer a key or share offer
    actuation_timeout_s: float = 4.0  # not in the guide: a linked car that does not confirm a command
    inbox_size: int = 200
    contract_year_s: float = 365 * 86400.0
    lite_yearly_jpy: int = 22_800
    lite_signup_jpy: int = 8_148
    wifi_monthly_jpy: int = 1_650
    dashcam_monthly_jpy: int = 550


DEFAULT_CONFIG = ModelConfig()
