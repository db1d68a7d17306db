"""Driver profiles, "my settings": at most 3 drivers per car, owner included (guide p.15).

How this part works: the contract holder makes the first registration; after that the owner
may register anyone, and a person who already drives the car (an accepted sharee or a digital
key holder) may register themself; a stranger may not. A driver is identified when their
registered key or phone comes near or unlocks the car, and their profile is applied; an
unregistered person must authenticate each time, so nothing is applied for them.
"""

from __future__ import annotations

import attrs

from ..errors import Code
from ..protocol import (
    DriverInfo,
    DriverList,
    DriverRegister,
    DriverRemove,
    Drivers,
    DriverUpdate,
    KeyNear,
)
from ._context import Ctx, Service, refuse, require_owner, require_service, share_of
from ._dispatch import on
from ._state import Driver, VehicleState


def drivers(state: VehicleState) -> Drivers:
    return Drivers(
        drivers=tuple(DriverInfo(account=d.account, name=d.name, profile=d.profile) for d in state.drivers),
        active=state.active_driver,
    )


def _find(state: VehicleState, account: str) -> Driver | None:
    return next((d for d in state.drivers if d.account == account), None)


def _owner_or_self(state: VehicleState, cx: Ctx, account: str, what: str) -> None:
    if cx.account is None or cx.account not in (state.contract.owner, account):
        raise refuse(Code.NOT_AUTHORIZED, f"only the owner or the driver themself may {what}")


def _drives_the_car(state: VehicleState, account: str) -> bool:
    """An accepted sharee or an active digital key holder: someone the owner let use the car."""
    share = share_of(state, account)
    return (share is not None and share.accepted) or any(k.account == account and k.active for k in state.keys)


@on(DriverRegister)
def _register(state: VehicleState, msg: DriverRegister, cx: Ctx):  # type: ignore[no-untyped-def]
    require_service(state, Service.MY_SETTINGS)
    if not state.drivers:
        require_owner(state, cx, "make the first driver registration")
    else:
        _owner_or_self(state, cx, msg.account, "register a driver")
        if cx.account != state.contract.owner and not _drives_the_car(state, msg.account):
            raise refuse(Code.NOT_AUTHORIZED, "only a sharee or a digital key holder of this car may register themself; ask the owner to register you")
    if _find(state, msg.account) is not None:
        raise refuse(Code.CONFLICT, f"{msg.account} is already a registered driver; update the profile instead")
    if len(state.drivers) >= cx.config.max_drivers:
        raise refuse(Code.LIMIT_REACHED, f"at most {cx.config.max_drivers} drivers per car, owner included; remove one first")
    if not msg.name.strip():
        raise refuse(Code.INVALID_VALUE, "a driver needs a name")
    state = attrs.evolve(state, drivers=state.drivers + (Driver(msg.account, msg.name, msg.profile),))
    return state, drivers(state)


@on(DriverRemove)
def _remove(state: VehicleState, msg: DriverRemove, cx: Ctx):  # type: ignore[no-untyped-def]
    _owner_or_self(state, cx, msg.account, "remove a driver")
    if _find(state, msg.account) is None:
        raise refuse(Code.NOT_FOUND, f"{msg.account} is not a registered driver")
    state = attrs.evolve(state, drivers=tuple(d for d in state.drivers if d.account != msg.account))
    if state.active_driver == msg.account:
        state = attrs.evolve(state, active_driver=None, applied_profile=None)
    return state, drivers(state)


@on(DriverUpdate)
def _update(state: VehicleState, msg: DriverUpdate, cx: Ctx):  # type: ignore[no-untyped-def]
    _owner_or_self(state, cx, msg.account, "change a driver profile")
    require_service(state, Service.MY_SETTINGS)
    if _find(state, msg.account) is None:
        raise refuse(Code.NOT_FOUND, f"{msg.account} is not a registered driver")
    state = attrs.evolve(
        state,
        drivers=tuple(attrs.evolve(d, profile=msg.profile) if d.account == msg.account else d for d in state.drivers),
    )
    if state.active_driver == msg.account:
        state = attrs.evolve(state, applied_profile=msg.profile)
    return state, drivers(state)


@on(DriverList)
def _list(state: VehicleState, msg: DriverList, cx: Ctx):  # type: ignore[no-untyped-def]
    account = cx.account
    if account is None or (account != state.contract.owner and _find(state, account) is None):
        raise refuse(Code.NOT_AUTHORIZED, "only the owner and registered drivers may list the drivers")
    require_service(state, Service.MY_SETTINGS)
    return state, drivers(state)


def identify(state: VehicleState, account: str, cx: Ctx) -> VehicleState:
    """Apply `account`'s profile if they are a registered driver; else nobody is identified."""
    driver = _find(state, account)
    if driver is None or state.contract.plan is None:
        return attrs.evolve(state, active_driver=None, applied_profile=None)
    return attrs.evolve(state, active_driver=driver.account, applied_profile=driver.profile)


@on(KeyNear)
def _key_near(state: VehicleState, msg: KeyNear, cx: Ctx):  # type: ignore[no-untyped-def]
    return identify(state, msg.account, cx), None
