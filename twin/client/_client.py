"""The Python client of the hub: app sessions and vehicle links, on trio-websocket.

An `AppSession` sends one command per call and returns its typed result, or raises
`CommandRefused` (the car's rules said no), `DeliveryError` (offline, unknown target, timeout,
overloaded) or `ProtocolError` (the hub could not read what we sent). `events()` yields the
pushes for the account (alerts, state changes, offers, garage changes) and acknowledges each
durable one as it is handed over, so the hub deletes it from the account's queue.

A `VehicleLink` is one car's telematics unit: the car's twin lives in the hub; the link
reports what the car senses (`report`, fire and forget, or `send_event`, which waits for the
twin to take it) and carries out the approved commands the twin sends it (`on_actuation`
decides; by default every one is done at once), answering each.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import AsyncIterator, Callable, Collection
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import attrs
import trio
from urllib.parse import urlsplit

from trio_websocket import ConnectionClosed, WebSocketConnection, wrap_client_stream

from twin.errors import Code, CommandRefused, DeliveryError, ProtocolError, TwinError
from twin.protocol import (
    MAX_FRAME_BYTES,
    Accepted,
    Ack,
    AlertSettings,
    AlertSettingsGet,
    AlertSettingsSet,
    AlertType,
    Channel,
    ClimateSettings,
    ClimateSettingsSet,
    ClimateScheduleAdd,
    ClimateScheduleRemove,
    ClimateStart,
    ClimateStatus,
    ClimateStop,
    ClimateGet,
    CloseWindows,
    Contract,
    ContractCancel,
    ContractGet,
    ContractOptions,
    ContractPlan,
    Done,
    DriverList,
    DriverProfile,
    DriverRegister,
    DriverRemove,
    Drivers,
    DriverUpdate,
    Envelope,
    Error,
    FlashHazards,
    GetVehicleInfo,
    GuardExtensionAnswer,
    GuardRequest,
    Handover,
    HandoverDeleteKeys,
    HandoverWipe,
    HelloPassword,
    HelloToken,
    HelloVehicle,
    KeyAction,
    KeyIssue,
    KeyList,
    KeyRelease,
    KeyRevoke,
    Keys,
    KeyUse,
    Location,
    Locate,
    Lock,
    Message,
    Ok,
    Plan,
    PoliceReport,
    RemoteCheck,
    Role,
    SetHazards,
    SharedFunction,
    ShareAccept,
    ShareDecline,
    ShareInvite,
    ShareList,
    ShareRevoke,
    Sharing,
    Snapshot,
    Software,
    SoftwareUpdateAccept,
    Tracking,
    TrackingRequest,
    Unlock,
    Unread,
    VehicleInfo,
    Welcome,
    Wifi,
    WifiStatus,
    ALL_SHARED_FUNCTIONS,
    decode,
    encode,
)

__all__ = [
    "Actuator", "AppSession", "LoginFailed", "Outcome", "VehicleLink", "open_app_session", "open_vehicle_link", "open_websocket",
]

R = TypeVar("R")


class LoginFailed(TwinError):
    """The hub refused the hello (wrong credentials, too many attempts); `code` says which."""

    default_code = Code.BAD_CREDENTIALS


@attrs.frozen
class Outcome:
    """A command's progress as the hub reported it: whether it was routed, and its reply."""

    accepted: bool
    reply: Envelope


def raise_for(body: Message) -> Any:
    """The result of an `Ok`, or the `Error` raised as the matching `TwinError`."""
    if isinstance(body, Unread):
        body = body.read()
    if isinstance(body, Ok):
        return body.result
    if isinstance(body, Error):
        try:
            code = Code(body.code)
        except ValueError:
            code = Code.INTERNAL
        if code in _DELIVERY:
            raise DeliveryError(body.message, code)
        if code in _PROTOCOL:
            raise ProtocolError(body.message, code)
        raise CommandRefused(body.message, code)
    raise ProtocolError(f"expected a reply, got {body.TYPE!r}", Code.UNKNOWN_TYPE)


_DELIVERY = {Code.UNKNOWN_TARGET, Code.OFFLINE, Code.TIMEOUT, Code.OVERLOADED, Code.INTERNAL}
_PROTOCOL = {Code.MALFORMED, Code.NOT_A_MAP, Code.UNKNOWN_TYPE, Code.MISSING_FIELD, Code.WRONG_TYPE,
             Code.UNSUPPORTED_VERSION, Code.FRAME_TOO_LARGE}


@asynccontextmanager
async def open_websocket(url: str, *, max_message_size: int = 4 * MAX_FRAME_BYTES) -> AsyncIterator[WebSocketConnection]:
    """A bare websocket to `url` (ws:// only), closed at exit with 1000.

    Unlike `trio_websocket.open_websocket_url` it owns the TCP stream and always closes it,
    also when the hub started the close (trio-websocket's client leaves its socket open then).
    """
    parts = urlsplit(url)
    if parts.scheme != "ws" or parts.hostname is None:
        raise ValueError(f"expected a ws://host:port/ URL, got {url!r}")
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    stream = await trio.open_tcp_stream(parts.hostname, parts.port or 80)
    try:
        async with _unwrapped(), trio.open_nursery() as nursery:
            ws = await wrap_client_stream(nursery, stream, parts.hostname, resource, max_message_size=max_message_size)
            try:
                yield ws
            finally:
                with trio.move_on_after(5) as scope:
                    scope.shield = True
                    await ws.aclose()
                nursery.cancel_scope.cancel()
    finally:
        await trio.aclose_forcefully(stream)


@asynccontextmanager
async def _unwrapped() -> AsyncIterator[None]:
    """Raise the one real exception out of a nursery's group, as a caller expects."""
    try:
        yield
    except BaseExceptionGroup as group:
        real = [e for e in group.exceptions if not isinstance(e, trio.Cancelled)]
        if len(real) == 1:
            raise real[0] from None
        raise


class _Pending:
    __slots__ = ("event", "accepted", "reply")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.accepted = False
        self.reply: Envelope | None = None


class _Connection:
    """A logged-in websocket: send frames, read them in a background task."""

    def __init__(self, ws: WebSocketConnection, welcome: Welcome, unread: Collection[str] = ()) -> None:
        self.ws = ws
        self._unread = frozenset(unread)
        self.address = welcome.address
        self.token = welcome.token
        self.garage: dict[str, Role] = dict(welcome.garage)
        self.closed: str | None = None
        self._pending: dict[int, _Pending] = {}  # requests waiting for their reply, by id

    async def send(self, envelope: Envelope) -> None:
        await self.ws.send_message(encode(envelope))

    async def _reader(self) -> None:
        """Hand every frame the hub sends to `_frame` until the connection closes; then wake
        every request still waiting (it sees `closed`)."""
        try:
            while True:
                frame = await self.ws.get_message()
                try:
                    env = decode(frame if isinstance(frame, bytes) else b"", max_bytes=4 * MAX_FRAME_BYTES, unread=self._unread)
                except ProtocolError:
                    continue
                await self._frame(env)
        except ConnectionClosed as exc:
            reason = exc.reason
            self.closed = f"{reason.code} {reason.reason or ''}".strip() if reason else "closed"
        finally:
            self._closed()

    async def _frame(self, env: Envelope) -> None:
        raise NotImplementedError

    def _closed(self) -> None:
        for pending in self._pending.values():
            pending.event.set()


async def _hello(ws: WebSocketConnection, hello: Message, timeout: float) -> Welcome:
    await ws.send_message(encode(Envelope(hello, sender="", target="hub", id=1)))
    with trio.fail_after(timeout):
        frame = await ws.get_message()
    env = decode(frame if isinstance(frame, bytes) else b"", max_bytes=4 * MAX_FRAME_BYTES)
    if isinstance(env.body, Welcome):
        return env.body
    if isinstance(env.body, Error):
        try:
            code = Code(env.body.code)
        except ValueError:  # a code this client does not know yet
            code = LoginFailed.default_code
        raise LoginFailed(env.body.message, code)
    raise ProtocolError(f"expected a welcome, got {env.type!r}", Code.UNKNOWN_TYPE)


# --- app sessions


class AppSession(_Connection):
    """A logged-in app: `await s.lock("car:1")`, `async for env in s.events(): ...`."""

    def __init__(self, ws: WebSocketConnection, welcome: Welcome, timeout: float, unread: Collection[str] = ()) -> None:
        super().__init__(ws, welcome, unread)
        self.timeout = timeout
        self._ids = 0
        self._events_in, self._events = trio.open_memory_channel[Envelope](math.inf)
        self.acked = 0

    async def _frame(self, env: Envelope) -> None:
        body = env.body
        if body.KIND == "reply":
            pending = self._pending.get(env.id)
            if pending is not None:
                pending.reply = env
                pending.event.set()
            else:
                self._events_in.send_nowait(env)  # an error not tied to a request
        elif type(body) is Accepted:
            pending = self._pending.get(env.id)
            if pending is not None:
                pending.accepted = True
        else:
            self._events_in.send_nowait(env)

    def _closed(self) -> None:
        self._events_in.close()
        super()._closed()

    async def request(self, target: str, body: Message, *, timeout: float | None = None) -> Outcome:
        """Send one command and wait for its final reply; raise `DeliveryError(TIMEOUT)` if the
        hub says nothing for `timeout` (default: the session's) plus a second of slack."""
        self._ids += 1
        corr = self._ids
        pending = self._pending[corr] = _Pending()
        try:
            await self.send(Envelope(body, sender="", target=target, id=corr))
            with trio.move_on_after((self.timeout if timeout is None else timeout) + 1.0):
                await pending.event.wait()
            if pending.reply is None:
                if self.closed is not None:
                    raise DeliveryError(f"the connection closed ({self.closed}) before {target} answered", Code.OFFLINE)
                raise DeliveryError(f"no answer from the hub for {body.TYPE!r} to {target}", Code.TIMEOUT)
            return Outcome(pending.accepted, pending.reply)
        finally:
            del self._pending[corr]

    async def command(self, target: str, body: Message, *, timeout: float | None = None) -> Any:
        """Send one command; return its result or raise the error it was answered with."""
        outcome = await self.request(target, body, timeout=timeout)
        return raise_for(outcome.reply.body)

    def events(self) -> "_Events":
        """Pushes to this account (alerts, state changes, offers...) as an async iterator; each
        durable one (envelope `seq` > 0) is acked as it is handed over. Ends when the connection
        closes. A plain iterator, not a generator: breaking out of the loop is fine."""
        return _Events(self)

    async def next_event(self) -> Envelope:
        """The next push (see `events`); raises `StopAsyncIteration` once the connection closed."""
        return await _Events(self).__anext__()

    # one method per command

    async def lock(self, car: str) -> Snapshot:
        return await self.command(car, Lock())  # type: ignore[no-any-return]

    async def unlock(self, car: str) -> Snapshot:
        return await self.command(car, Unlock())  # type: ignore[no-any-return]

    async def set_hazards(self, car: str, on: bool) -> Snapshot:
        return await self.command(car, SetHazards(on=on))  # type: ignore[no-any-return]

    async def close_windows(self, car: str) -> Snapshot:
        return await self.command(car, CloseWindows())  # type: ignore[no-any-return]

    async def flash_hazards(self, car: str) -> Done:
        return await self.command(car, FlashHazards())  # type: ignore[no-any-return]

    async def locate(self, car: str) -> Location:
        return await self.command(car, Locate())  # type: ignore[no-any-return]

    async def remote_check(self, car: str) -> Snapshot:
        return await self.command(car, RemoteCheck())  # type: ignore[no-any-return]

    async def vehicle_info(self, car: str) -> VehicleInfo:
        return await self.command(car, GetVehicleInfo())  # type: ignore[no-any-return]

    async def climate_start(self, car: str, duration_min: int = 10, settings: ClimateSettings | None = None) -> ClimateStatus:
        return await self.command(car, ClimateStart(duration_min=duration_min, settings=settings))  # type: ignore[no-any-return]

    async def climate_stop(self, car: str) -> ClimateStatus:
        return await self.command(car, ClimateStop())  # type: ignore[no-any-return]

    async def climate_get(self, car: str) -> ClimateStatus:
        return await self.command(car, ClimateGet())  # type: ignore[no-any-return]

    async def climate_settings(self, car: str, settings: ClimateSettings) -> ClimateStatus:
        return await self.command(car, ClimateSettingsSet(settings=settings))  # type: ignore[no-any-return]

    async def climate_schedule_add(self, car: str, weekdays: tuple[int, ...], at: str, duration_min: int = 10) -> ClimateStatus:
        return await self.command(car, ClimateScheduleAdd(weekdays=weekdays, at=at, duration_min=duration_min))  # type: ignore[no-any-return]

    async def climate_schedule_remove(self, car: str, schedule_id: int) -> ClimateStatus:
        return await self.command(car, ClimateScheduleRemove(schedule_id=schedule_id))  # type: ignore[no-any-return]

    async def alert_settings_set(self, car: str, alert: AlertType, channel: Channel, enabled: bool) -> AlertSettings:
        return await self.command(car, AlertSettingsSet(alert=alert, channel=channel, enabled=enabled))  # type: ignore[no-any-return]

    async def alert_settings_get(self, car: str) -> AlertSettings:
        return await self.command(car, AlertSettingsGet())  # type: ignore[no-any-return]

    async def share_invite(self, car: str, account: str, functions: frozenset[SharedFunction] = ALL_SHARED_FUNCTIONS) -> Sharing:
        return await self.command(car, ShareInvite(account=account, functions=functions))  # type: ignore[no-any-return]

    async def share_accept(self, car: str) -> Sharing:
        return await self.command(car, ShareAccept())  # type: ignore[no-any-return]

    async def share_decline(self, car: str) -> Done:
        return await self.command(car, ShareDecline())  # type: ignore[no-any-return]

    async def share_revoke(self, car: str, account: str) -> Sharing:
        return await self.command(car, ShareRevoke(account=account))  # type: ignore[no-any-return]

    async def share_list(self, car: str) -> Sharing:
        return await self.command(car, ShareList())  # type: ignore[no-any-return]

    async def key_issue(self, car: str, account: str) -> Keys:
        return await self.command(car, KeyIssue(account=account))  # type: ignore[no-any-return]

    async def key_revoke(self, car: str, key_id: int) -> Keys:
        return await self.command(car, KeyRevoke(key_id=key_id))  # type: ignore[no-any-return]

    async def key_release(self, car: str) -> Done:
        return await self.command(car, KeyRelease())  # type: ignore[no-any-return]

    async def key_list(self, car: str) -> Keys:
        return await self.command(car, KeyList())  # type: ignore[no-any-return]

    async def key_use(self, car: str, action: KeyAction) -> Done:
        return await self.command(car, KeyUse(action=action))  # type: ignore[no-any-return]

    async def driver_register(self, car: str, account: str, name: str, profile: DriverProfile = DriverProfile()) -> Drivers:
        return await self.command(car, DriverRegister(account=account, name=name, profile=profile))  # type: ignore[no-any-return]

    async def driver_remove(self, car: str, account: str) -> Drivers:
        return await self.command(car, DriverRemove(account=account))  # type: ignore[no-any-return]

    async def driver_update(self, car: str, account: str, profile: DriverProfile) -> Drivers:
        return await self.command(car, DriverUpdate(account=account, profile=profile))  # type: ignore[no-any-return]

    async def driver_list(self, car: str) -> Drivers:
        return await self.command(car, DriverList())  # type: ignore[no-any-return]

    async def software_update_accept(self, car: str, version: str) -> Software:
        return await self.command(car, SoftwareUpdateAccept(version=version))  # type: ignore[no-any-return]

    async def contract_plan(self, car: str, plan: Plan, navi_package: bool = False) -> Contract:
        return await self.command(car, ContractPlan(plan=plan, navi_package=navi_package))  # type: ignore[no-any-return]

    async def contract_options(self, car: str, wifi: bool = False, dashcam: bool = False) -> Contract:
        return await self.command(car, ContractOptions(wifi=wifi, dashcam=dashcam))  # type: ignore[no-any-return]

    async def contract_cancel(self, car: str) -> Contract:
        return await self.command(car, ContractCancel())  # type: ignore[no-any-return]

    async def contract_get(self, car: str) -> Contract:
        return await self.command(car, ContractGet())  # type: ignore[no-any-return]

    async def handover_delete_keys(self, car: str) -> Handover:
        return await self.command(car, HandoverDeleteKeys())  # type: ignore[no-any-return]

    async def handover_wipe(self, car: str) -> Handover:
        return await self.command(car, HandoverWipe())  # type: ignore[no-any-return]

    async def police_report(self, car: str, report_no: str) -> Done:
        return await self.command(car, PoliceReport(report_no=report_no))  # type: ignore[no-any-return]

    async def tracking_request(self, car: str) -> Tracking:
        return await self.command(car, TrackingRequest())  # type: ignore[no-any-return]

    async def guard_request(self, car: str) -> Done:
        return await self.command(car, GuardRequest())  # type: ignore[no-any-return]

    async def guard_extension_answer(self, car: str, extend: bool) -> Done:
        return await self.command("operator", GuardExtensionAnswer(car=car, extend=extend))  # type: ignore[no-any-return]

    async def wifi_status(self, car: str) -> Wifi:
        return await self.command(car, WifiStatus())  # type: ignore[no-any-return]


class _Events:
    __slots__ = ("session",)

    def __init__(self, session: AppSession) -> None:
        self.session = session

    def __aiter__(self) -> "_Events":
        return self

    async def __anext__(self) -> Envelope:
        session = self.session
        try:
            env = await session._events.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise StopAsyncIteration from None
        if env.seq > 0:
            session.acked = max(session.acked, env.seq)
            try:
                await session.send(Envelope(Ack(upto=env.seq), sender="", target="hub"))
            except ConnectionClosed:
                pass
        return env


@asynccontextmanager
async def open_app_session(
    url: str,
    *,
    email: str | None = None,
    password: str | None = None,
    token: str | None = None,
    timeout: float = 5.0,
    unread: Collection[str] = (),
) -> AsyncIterator[AppSession]:
    """Connect to the hub at `url` and log in (e-mail and password, or a token).

    Frames whose type is in `unread` (say `("ok", "state_changed")`) arrive with an `Unread`
    body, their fields not decoded: for a client that only counts them, as `twin load` does.
    Raises `LoginFailed` when the hub refuses. Leaving the block closes the connection (1000).
    """
    if token is not None:
        hello: Message = HelloToken(token=token)
    elif email is not None and password is not None:
        hello = HelloPassword(email=email, password=password)
    else:
        raise ValueError("log in with email= and password=, or with token=")
    async with open_websocket(url) as ws:
        welcome = await _hello(ws, hello, timeout)
        session = AppSession(ws, welcome, timeout, unread)
        async with _unwrapped(), trio.open_nursery() as nursery:
            nursery.start_soon(session._reader)
            try:
                yield session
            finally:
                nursery.cancel_scope.cancel()


# --- vehicle links

#: decides an actuation: None to carry it out, or the reason the car cannot
Actuator = Callable[[Message], "str | None"]


class VehicleLink(_Connection):
    """One car's telematics unit on the hub: reports events, carries out actuations."""

    def __init__(self, ws: WebSocketConnection, welcome: Welcome, vehicle_id: str, on_actuation: Actuator | None,
                 timeout: float) -> None:
        super().__init__(ws, welcome)
        self.vehicle_id = vehicle_id
        self.car = "car:" + vehicle_id
        self.timeout = timeout
        self.on_actuation = on_actuation
        self.actuations = 0  # answered so far, carried out or not
        self.refusals: deque[Error] = deque(maxlen=100)  # the newest errors about unnumbered frames
        self._ids = 0

    async def report(self, event: Message) -> None:
        """Tell the twin what the car sensed, without waiting; a refusal lands in `refusals`."""
        await self.send(Envelope(event, sender="", target=self.car))

    async def send_event(self, event: Message, *, timeout: float | None = None) -> Done:
        """Tell the twin what the car sensed and wait until it took it (raise if it refused)."""
        self._ids += 1
        corr = self._ids
        pending = self._pending[corr] = _Pending()
        try:
            await self.send(Envelope(event, sender="", target=self.car, id=corr))
            with trio.move_on_after(self.timeout if timeout is None else timeout):
                await pending.event.wait()
            if pending.reply is None:
                raise DeliveryError(f"{self.car} did not answer {event.TYPE!r} in time", Code.TIMEOUT)
            return raise_for(pending.reply.body)  # type: ignore[no-any-return]
        finally:
            del self._pending[corr]

    async def _frame(self, env: Envelope) -> None:
        body = env.body
        if body.KIND == "command" and env.id:
            await self._actuate(env)
        elif body.KIND == "reply":
            pending = self._pending.get(env.id)
            if pending is not None:
                pending.reply = env
                pending.event.set()
            elif isinstance(body, Error):
                self.refusals.append(body)

    async def _actuate(self, env: Envelope) -> None:
        reason = self.on_actuation(env.body) if self.on_actuation is not None else None
        answer: Message
        if reason is None:
            answer = Ok(result=Done(detail=f"{env.body.TYPE} done"))
        else:
            answer = Error(code=Code.ACTUATION_FAILED.value, message=reason)
        self.actuations += 1
        await self.send(Envelope(answer, sender="", target=self.car, id=env.id))


@asynccontextmanager
async def open_vehicle_link(
    url: str,
    vehicle_id: str,
    secret: str,
    *,
    on_actuation: Actuator | None = None,
    timeout: float = 5.0,
) -> AsyncIterator[VehicleLink]:
    """Attach as car `vehicle_id`'s telematics unit (log in with its link secret) until the
    block ends, then close with 1000; the car is online meanwhile. Raises `LoginFailed`."""
    async with open_websocket(url) as ws:
        welcome = await _hello(ws, HelloVehicle(vehicle_id=vehicle_id, secret=secret), timeout)
        link = VehicleLink(ws, welcome, vehicle_id, on_actuation, timeout)
        async with _unwrapped(), trio.open_nursery() as nursery:
            nursery.start_soon(link._reader)
            try:
                yield link
            finally:
                nursery.cancel_scope.cancel()
