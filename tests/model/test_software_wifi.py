"""Software update (SPEC p.31) and the in-car Wi-Fi option (SPEC p.18)."""

from __future__ import annotations

import pytest

from twin.errors import Code
from twin.model import DEFAULT_CONFIG, VEHICLE
from twin.protocol import (
    AlertType,
    ContractOptions,
    ContractPlan,
    Plan,
    Power,
    RemoteCheck,
    SoftwareAvailable,
    SoftwareStage,
    SoftwareUpdateAccept,
    WifiDevice,
    WifiStatus,
    WifiUsage,
)

from ._helpers import (
    EPOCH,
    OWNER,
    advance,
    alerts_in,
    both_channels,
    car,
    ignition,
    ok,
    refused,
    rejected_event,
    report,
    with_sharee,
)

DOWNLOAD = DEFAULT_CONFIG.download_s
HOUR = 3600.0
DAY = 86400.0


def offered(install_s: int = 600, needs_restart: bool = True):  # type: ignore[no-untyped-def]
    state = with_sharee(car(), "bob")
    state, out = report(state, SoftwareAvailable(version="2.0.0", notes="faster maps", install_s=install_s, needs_restart=needs_restart), EPOCH)
    assert alerts_in(out) == both_channels(OWNER, AlertType.SOFTWARE)  # the owner, not the sharee
    assert "2.0.0" in out[0].body.text and "faster maps" in out[0].body.text
    assert state.software.stage is SoftwareStage.AVAILABLE
    return state


@pytest.mark.parametrize("install_s", [600, 900])
def test_available_accept_download_install_restart_then_done_at_the_next_ignition_on(install_s: int) -> None:
    state = offered(install_s)
    state, result, _ = ok(state, SoftwareUpdateAccept(version="2.0.0"), now=EPOCH + 100)
    assert (result.stage, result.offered, result.ready_at) == (SoftwareStage.DOWNLOADING, "2.0.0", EPOCH + 100 + DOWNLOAD)
    assert VEHICLE.next_deadline(state) == EPOCH + 100 + DOWNLOAD
    state, out = advance(state, EPOCH + 100 + DOWNLOAD)
    assert out == [] and state.software.stage is SoftwareStage.INSTALLING
    installed = EPOCH + 100 + DOWNLOAD + install_s
    assert VEHICLE.next_deadline(state) == installed
    ok(state, RemoteCheck(), now=installed - 1)  # the car stays usable while installing
    state, out = advance(state, installed - 0.001)
    assert state.software.stage is SoftwareStage.INSTALLING
    state, out = advance(state, installed)
    assert state.software.stage is SoftwareStage.RESTART_REQUIRED and state.software.version == "1.0.0"
    assert alerts_in(out) == both_channels(OWNER, AlertType.SOFTWARE) and "restart" in out[0].body.text
    assert VEHICLE.next_deadline(state) is None
    state, _ = ignition(state, Power.ACC, installed + HOUR)
    assert state.software.stage is SoftwareStage.RESTART_REQUIRED  # ACC is not a restart
    state, out = ignition(state, Power.ON, installed + 2 * HOUR)
    assert (state.software.stage, state.software.version, state.software.offered) == (SoftwareStage.DONE, "2.0.0", None)
    assert alerts_in(out) == both_channels(OWNER, AlertType.SOFTWARE)


def test_an_update_without_restart_is_done_when_installed() -> None:
    state = offered(needs_restart=False)
    state, _, _ = ok(state, SoftwareUpdateAccept(version="2.0.0"), now=EPOCH)
    state, out = advance(state, EPOCH + DOWNLOAD + 600)
    assert (state.software.stage, state.software.version) == (SoftwareStage.DONE, "2.0.0")
    assert alerts_in(out) == both_channels(OWNER, AlertType.SOFTWARE)


def test_ignition_on_during_the_install_does_not_finish_it() -> None:
    state = offered()
    state, _, _ = ok(state, SoftwareUpdateAccept(version="2.0.0"), now=EPOCH)
    state, _ = ignition(state, Power.ON, EPOCH + DOWNLOAD + 60)
    assert state.software.stage is SoftwareStage.INSTALLING


@pytest.mark.parametrize(
    ("body", "who", "code"),
    [
        (SoftwareUpdateAccept(version="3.0.0"), OWNER, Code.NOT_FOUND),
        (SoftwareUpdateAccept(version="2.0.0"), "bob", Code.NOT_AUTHORIZED),
    ],
)
def test_accept_mistakes_are_refused(body: SoftwareUpdateAccept, who: str, code: Code) -> None:
    refused(offered(), body, code, who)


def test_nothing_to_accept_before_an_offer() -> None:
    refused(car(), SoftwareUpdateAccept(version="2.0.0"), Code.NOT_FOUND)


@pytest.mark.parametrize(
    ("event", "code"),
    [
        (SoftwareAvailable(version="1.0.0"), Code.CONFLICT),  # already installed
        (SoftwareAvailable(version="2.1.0", install_s=0), Code.INVALID_VALUE),
    ],
)
def test_impossible_offers_are_refused(event: SoftwareAvailable, code: Code) -> None:
    rejected_event(car(), event, code)


def test_no_new_offer_while_one_is_downloading() -> None:
    state, _, _ = ok(offered(), SoftwareUpdateAccept(version="2.0.0"))
    rejected_event(state, SoftwareAvailable(version="2.1.0"), Code.CONFLICT, EPOCH + 1)


# --- in-car Wi-Fi


def wifi_car(plan: Plan, power: Power = Power.ACC):  # type: ignore[no-untyped-def]
    state = car(plan=plan, wifi=True)
    state, _ = ignition(state, power, EPOCH)
    return state


@pytest.mark.parametrize(("plan", "limit"), [(Plan.LITE, 5), (Plan.STANDARD, 10)])
def test_device_limits_5_on_lite_10_on_standard(plan: Plan, limit: int) -> None:
    state = wifi_car(plan)
    for i in range(limit):
        state, out = report(state, WifiDevice(device_id=f"d{i}", joined=True), EPOCH + i)
        assert out == []
    assert str(limit) in rejected_event(state, WifiDevice(device_id="one-more", joined=True), Code.LIMIT_REACHED, EPOCH + 60)
    again, out = report(state, WifiDevice(device_id="d0", joined=True), EPOCH + 61)
    assert again is state and out == []  # a device already on is no new device
    state, _ = report(state, WifiDevice(device_id="d0", joined=False), EPOCH + 62)
    state, _ = report(state, WifiDevice(device_id="one-more", joined=True), EPOCH + 63)
    _, result, _ = ok(state, WifiStatus(), now=EPOCH + 64)
    assert len(result.devices) == limit and "one-more" in result.devices and "d0" not in result.devices


@pytest.mark.parametrize("plan", [Plan.LITE, Plan.STANDARD])
def test_wifi_needs_acc_or_ignition_on(plan: Plan) -> None:
    state = car(plan=plan, wifi=True)
    assert "ACC" in rejected_event(state, WifiDevice(device_id="d", joined=True), Code.CONFLICT)
    for power in (Power.ACC, Power.ON):
        on, _ = ignition(state, power, EPOCH + 1)
        report(on, WifiDevice(device_id="d", joined=True), EPOCH + 2)


def test_power_off_drops_every_device() -> None:
    state, _ = report(wifi_car(Plan.STANDARD, Power.ON), WifiDevice(device_id="d", joined=True), EPOCH + 1)
    state, _ = ignition(state, Power.OFF, EPOCH + 2)
    _, result, _ = ok(state, WifiStatus(), now=EPOCH + 3)
    assert result.devices == ()


def test_moving_to_lite_keeps_the_first_five_devices() -> None:
    state = wifi_car(Plan.STANDARD)
    for i in range(8):
        state, _ = report(state, WifiDevice(device_id=f"d{i}", joined=True), EPOCH + i)
    state, _, _ = ok(state, ContractPlan(plan=Plan.LITE), now=EPOCH + 10)
    _, result, _ = ok(state, WifiStatus(), now=EPOCH + 11)
    assert result.devices == ("d0", "d1", "d2", "d3", "d4")


def test_ending_the_option_drops_every_device() -> None:
    state, _ = report(wifi_car(Plan.STANDARD), WifiDevice(device_id="d", joined=True), EPOCH + 1)
    state, result, _ = ok(state, ContractOptions(wifi=False), now=EPOCH + 2)
    assert not result.wifi and state.wifi.devices == ()
    refused(state, WifiStatus(), Code.OPTION_REQUIRED, now=EPOCH + 3)


# Local (JST) days: EPOCH is 09:00 on day D; D starts at EPOCH - 9 h and ends at EPOCH + 15 h.
D0 = EPOCH - 9 * HOUR
GB = 1024


@pytest.mark.parametrize(
    ("usage", "throttled"),
    [
        ([(-1, 6 * GB)], True),  # yesterday
        ([(-3, 2 * GB), (-2, 2 * GB), (-1, 2 * GB)], True),  # exactly 6 GB over the 3 days
        ([(-3, 2 * GB), (-2, 2 * GB), (-1, 2 * GB - 1)], False),
        ([(-4, 6 * GB)], False),  # 4 days ago is not among the 3 days before today
        ([(0, 10 * GB)], False),  # today does not count toward today
        ([(-4, 3 * GB), (-3, 3 * GB)], False),
    ],
)
def test_throttled_for_the_day_after_6gb_in_the_3_days_before_today(usage: list[tuple[int, int]], throttled: bool) -> None:
    state = car(wifi=True)
    for day, mb in sorted(usage):
        state, _ = report(state, WifiUsage(megabytes=mb), D0 + day * DAY + 12 * HOUR)
    _, result, _ = ok(state, WifiStatus(), now=EPOCH)  # day 0, 09:00 JST
    assert result.throttled is throttled


def test_the_throttle_follows_the_local_day_boundary() -> None:
    state, _ = report(car(wifi=True), WifiUsage(megabytes=6 * GB), D0 + 23 * HOUR)  # day 0, 23:00 JST
    _, result, _ = ok(state, WifiStatus(), now=D0 + DAY - 1)  # still day 0
    assert not result.throttled
    _, result, _ = ok(state, WifiStatus(), now=D0 + DAY)  # day 1, 00:00 JST
    assert result.throttled
    _, result, _ = ok(state, WifiStatus(), now=D0 + 4 * DAY - 1)  # day 3: day 0 still counts
    assert result.throttled
    _, result, _ = ok(state, WifiStatus(), now=D0 + 4 * DAY)  # day 4: day 0 is out of the window
    assert not result.throttled


def test_negative_usage_is_refused() -> None:
    rejected_event(car(wifi=True), WifiUsage(megabytes=-1), Code.INVALID_VALUE)
