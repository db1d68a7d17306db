"""Software update (guide p.31): offered, accepted, downloaded, installed (~10 min, the display
stays usable), then a restart prompt when one is needed; the next ignition ON finishes it."""

from __future__ import annotations

import attrs

from ..errors import Code
from ..protocol import AlertType, Software, SoftwareAvailable, SoftwareStage, SoftwareUpdateAccept
from ._context import Ctx, Service, alert, refuse, require_owner, require_service
from ._dispatch import on
from ._state import SoftwareState, VehicleState


def software(state: VehicleState) -> Software:
    s = state.software
    return Software(version=s.version, stage=s.stage, offered=s.offered, ready_at=s.stage_ends_at)


def _notify(state: VehicleState, cx: Ctx, text: str) -> None:
    if state.contract.owner:
        alert(state, cx, AlertType.SOFTWARE, text, recipients=[state.contract.owner])


@on(SoftwareAvailable)
def _available(state: VehicleState, msg: SoftwareAvailable, cx: Ctx):  # type: ignore[no-untyped-def]
    s = state.software
    if s.stage in (SoftwareStage.DOWNLOADING, SoftwareStage.INSTALLING):
        raise refuse(Code.CONFLICT, f"an update to {s.offered} is {s.stage.value}; offer the next one afterwards")
    if msg.version == s.version:
        raise refuse(Code.CONFLICT, f"version {msg.version} is already installed")
    if msg.install_s <= 0:
        raise refuse(Code.INVALID_VALUE, "install time must be positive")
    sw = SoftwareState(
        version=s.version,
        offered=msg.version,
        stage=SoftwareStage.AVAILABLE,
        install_s=msg.install_s,
        needs_restart=msg.needs_restart,
    )
    state = attrs.evolve(state, software=sw)
    _notify(state, cx, f"software {msg.version} is available: read and accept the terms to update. {msg.notes}".strip())
    return state, None


@on(SoftwareUpdateAccept)
def _accept(state: VehicleState, msg: SoftwareUpdateAccept, cx: Ctx):  # type: ignore[no-untyped-def]
    require_owner(state, cx, "accept a software update")
    require_service(state, Service.MY_SETTINGS)
    s = state.software
    if s.stage is not SoftwareStage.AVAILABLE or s.offered != msg.version:
        raise refuse(Code.NOT_FOUND, f"version {msg.version} is not on offer (offered: {s.offered or 'nothing'})")
    sw = attrs.evolve(s, stage=SoftwareStage.DOWNLOADING, stage_ends_at=cx.now + cx.config.download_s)
    state = attrs.evolve(state, software=sw)
    return state, software(state)


def advance(state: VehicleState, cx: Ctx) -> VehicleState:
    s = state.software
    if s.stage_ends_at is None or s.stage_ends_at > cx.now:
        return state
    at = s.stage_ends_at
    if s.stage is SoftwareStage.DOWNLOADING:
        state = attrs.evolve(state, software=attrs.evolve(s, stage=SoftwareStage.INSTALLING, stage_ends_at=at + s.install_s))
    elif s.stage is SoftwareStage.INSTALLING and s.needs_restart:
        state = attrs.evolve(state, software=attrs.evolve(s, stage=SoftwareStage.RESTART_REQUIRED, stage_ends_at=None))
        _notify(state, cx, f"software {s.offered} is installed: restart the car to finish")
    else:
        state = _done(state)
        _notify(state, cx, f"software {state.software.version} is installed")
    return state


def _done(state: VehicleState) -> VehicleState:
    s = state.software
    return attrs.evolve(state, software=SoftwareState(version=s.offered or s.version, stage=SoftwareStage.DONE))


def restarted(state: VehicleState, cx: Ctx) -> VehicleState:
    if state.software.stage is SoftwareStage.RESTART_REQUIRED:
        state = _done(state)
        _notify(state, cx, f"software {state.software.version} is installed")
    return state
