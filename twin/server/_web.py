"""The hub's front door: plain HTTP for the web app and websockets on the same port.

trio-websocket's server answers every request that is not a websocket upgrade with an error
itself, so the hub listens through this front instead:

1. accept the TCP stream and read the request head (bounded in size and time), parsed by h11;
2. a websocket upgrade: check its `Origin` (see `origin_allowed`), answer 403 with the reason
   if it is not allowed, else hand the stream to trio-websocket (`wrap_server_stream`)
   through `_Replay`, which gives back the bytes already read before the socket's own;
3. anything else: `GET`/`HEAD` of the web app's files under `/app/` (when the hub serves one,
   `HubConfig.web`), a redirect from `/` to `/app/`, 404 or 405 otherwise; one request per
   connection (`Connection: close`).

The websocket side behaves exactly as `trio_websocket.WebSocketServer` did: the same handler,
message queue, size limit and connect and disconnect timeouts.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import mimetypes
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import h11
import trio
from trio_websocket import WebSocketRequest, wrap_server_stream

__all__ = ["WebApp", "WebFront", "demo_json", "origin_allowed", "WEB_ROOT"]

log = logging.getLogger("twin.server.web")

#: the web app shipped with twin (the demo's page, the JS client, its types)
WEB_ROOT = Path(__file__).resolve().parents[1] / "web"
MAX_HEAD_BYTES = 16 * 1024
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".mts": "text/plain; charset=utf-8",  # the .d.mts declarations, readable in a browser tab
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}
_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


@attrs.define(eq=False)
class WebApp:
    """A static web app served under `prefix` on the hub's port.

    `files` holds generated files served next to those of `root` (the demo's `demo.json`
    with the cars the car panel can play); they may be added while the hub runs."""

    root: Path = WEB_ROOT
    prefix: str = "/app/"
    files: dict[str, bytes] = attrs.Factory(dict)

    def lookup(self, path: str) -> tuple[bytes, str] | None:
        """The body and content type of the file at URL path `path`, if there is one."""
        if not path.startswith(self.prefix):
            return None
        name = path[len(self.prefix):] or "index.html"
        if name in self.files:
            return self.files[name], _content_type(name)
        root = self.root.resolve()
        file = (root / name).resolve()
        if not file.is_relative_to(root) or not file.is_file():
            return None
        return file.read_bytes(), _content_type(name)


def demo_json(accounts: Sequence[str], password: str, cars: list[dict[str, Any]]) -> bytes:
    """The web app's `demo.json`: the demo's accounts and password, and the cars the car panel
    can play with their link secrets (empty when the store was provisioned by an earlier run:
    secrets are kept only as digests). A demo on loopback only: it hands out every credential."""
    return json.dumps({"accounts": list(accounts), "password": password, "cars": cars}, indent=1).encode()


def _content_type(name: str) -> str:
    suffix = Path(name).suffix
    return _TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def own_origins(host: str, port: int) -> frozenset[str]:
    """The origins of pages this hub serves itself: `http://host:port`, and the loopback
    names when it listens on loopback (so http://localhost:8765/app/ works as well)."""
    names = {host if ":" not in host else f"[{host}]"}
    try:
        if ipaddress.ip_address(host).is_loopback:
            names.update(_LOOPBACK_NAMES)
    except ValueError:
        if host == "localhost":
            names.update(_LOOPBACK_NAMES)
    return frozenset(f"http://{name}:{port}" for name in names)


def origin_allowed(origin: str | None, allowed: frozenset[str]) -> bool:
    """Whether a websocket upgrade with this `Origin` header may go on.

    No header: not a browser page (the Python and Node clients, a car's unit): allowed, as a
    browser always sends one. A page's origin must be listed; any other page (another site
    the person has open, `null` from a file) could otherwise drive the person's hub session.
    """
    return origin is None or origin.rstrip("/").lower() in allowed


class _Replay(trio.abc.Stream):
    """A stream that first gives back `head` (bytes already read from it), then its own."""

    def __init__(self, stream: trio.abc.Stream, head: bytes) -> None:
        self.stream = stream
        self.head = head
        # every frame of the connection's life passes here: go straight to the socket's own
        # methods (and, once `head` is given back, for receiving too)
        self.send_all = stream.send_all  # type: ignore[method-assign]
        if not head:
            self.receive_some = stream.receive_some  # type: ignore[method-assign]

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.stream.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        if self.head:
            size = len(self.head) if max_bytes is None else max_bytes
            chunk, self.head = self.head[:size], self.head[size:]
            if not self.head:
                self.receive_some = self.stream.receive_some  # type: ignore[method-assign]
            await trio.lowlevel.checkpoint()
            return chunk
        return await self.stream.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self.stream.aclose()


class WebFront:
    """Serve the hub's websocket `handler` and the web app of `config.web` on `listeners`.

    A drop-in for `trio_websocket.WebSocketServer` (same arguments, plus the hub's config):
    `await nursery.start(front.run)`, then `front.port`."""

    def __init__(
        self,
        handler: Callable[[WebSocketRequest], Awaitable[None]],
        listeners: Sequence[trio.SocketListener],
        config: Any,
        *,
        handler_nursery: trio.Nursery | None = None,
        message_queue_size: int = 1,
        max_message_size: int = 1 << 20,
        connect_timeout: float = 60.0,
        disconnect_timeout: float = 60.0,
    ) -> None:
        self.handler = handler
        self.listeners = list(listeners)
        self.web: WebApp | None = config.web
        self.allowed: frozenset[str] = frozenset(o.rstrip("/").lower() for o in config.allowed_origins)
        self.host: str = config.host
        self.handler_nursery = handler_nursery
        self.message_queue_size = message_queue_size
        self.max_message_size = max_message_size
        self.connect_timeout = connect_timeout
        self.disconnect_timeout = disconnect_timeout

    @property
    def port(self) -> int:
        return int(self.listeners[0].socket.getsockname()[1])

    async def run(self, *, task_status: trio.TaskStatus[WebFront] = trio.TASK_STATUS_IGNORED) -> None:
        if self.web is not None:  # the pages it serves may open websockets to it
            self.allowed |= own_origins(self.host, self.port)
        async with trio.open_nursery() as nursery:
            serve = partial(trio.serve_listeners, self._connection, self.listeners, handler_nursery=self.handler_nursery)
            await nursery.start(serve)
            task_status.started(self)
            await trio.sleep_forever()

    async def _connection(self, stream: trio.SocketStream) -> None:
        try:
            head = b""
            request: h11.Request | None = None
            with trio.move_on_after(self.connect_timeout):
                head, request = await _read_head(stream)
            if request is None:
                if head:  # too long, or not HTTP
                    await _respond(stream, 400, "a bad HTTP request head\n")
                await trio.aclose_forcefully(stream)
                return
            if _is_upgrade(request):
                await self._websocket(stream, head, request)
            else:
                await self._http(stream, request)
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError) as exc:
            log.debug("connection dropped: %r", exc)
            await trio.aclose_forcefully(stream)
        except Exception:  # one bad connection must not take the listener down
            log.exception("the front failed on a connection")
            await trio.aclose_forcefully(stream)

    async def _websocket(self, stream: trio.SocketStream, head: bytes, request: h11.Request) -> None:
        origin = _header(request, b"origin")
        if not origin_allowed(origin, self.allowed):
            allowed = ", ".join(sorted(self.allowed)) or "none"
            await _respond(stream, 403, f"origin {origin} is not allowed to open a websocket on this hub (allowed: {allowed}); "
                                        "add it to HubConfig.allowed_origins\n")
            await trio.aclose_forcefully(stream)
            return
        async with trio.open_nursery() as nursery:
            ws_request: WebSocketRequest | None = None
            with trio.move_on_after(self.connect_timeout):
                ws_request = await wrap_server_stream(
                    nursery, _Replay(stream, head), message_queue_size=self.message_queue_size, max_message_size=self.max_message_size
                )
            if ws_request is None:  # the handshake did not complete in time
                nursery.cancel_scope.cancel()
                await trio.aclose_forcefully(stream)
                return
            try:
                await self.handler(ws_request)
            finally:
                with trio.move_on_after(self.disconnect_timeout):
                    await ws_request._connection.aclose()  # the handler closed it already, normally
                nursery.cancel_scope.cancel()

    async def _http(self, stream: trio.SocketStream, request: h11.Request) -> None:
        method = request.method.decode("ascii", "replace")
        path = request.target.decode("ascii", "replace").split("?", 1)[0]
        web = self.web
        if method not in ("GET", "HEAD"):
            await _respond(stream, 405, f"{method} is not served here\n", [(b"allow", b"GET, HEAD")])
        elif web is None:
            await _respond(stream, 426, "this is a twin hub: open a websocket here (see docs/protocol.md)\n")
        elif path in ("/", web.prefix.rstrip("/")):
            await _respond(stream, 302, f"the app is at {web.prefix}\n", [(b"location", web.prefix.encode())])
        else:
            found = web.lookup(path)
            if found is None:
                await _respond(stream, 404, f"{path} not found\n")
            else:
                body, kind = found
                await _respond(stream, 200, body, [(b"content-type", kind.encode())], head_only=method == "HEAD")
        await trio.aclose_forcefully(stream)


async def _read_head(stream: trio.abc.ReceiveStream) -> tuple[bytes, h11.Request | None]:
    """Read up to the end of the request head; return what was read and the request (None if
    the peer closed early, sent more than `MAX_HEAD_BYTES` of head, or not HTTP)."""
    data = b""
    while b"\r\n\r\n" not in data:
        if len(data) > MAX_HEAD_BYTES:
            return data, None
        chunk = await stream.receive_some(4096)
        if not chunk:
            return data, None
        data += chunk
    parser = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
    parser.receive_data(data)
    try:
        event = parser.next_event()
    except h11.RemoteProtocolError:
        return data, None
    return data, event if isinstance(event, h11.Request) else None


def _header(request: h11.Request, name: bytes) -> str | None:
    for key, value in request.headers:
        if key == name:
            return value.decode("latin-1")
    return None


def _is_upgrade(request: h11.Request) -> bool:
    upgrade = _header(request, b"upgrade") or ""
    return upgrade.lower() == "websocket"


_REASONS = {200: b"OK", 302: b"Found", 400: b"Bad Request", 403: b"Forbidden", 404: b"Not Found",
            405: b"Method Not Allowed", 426: b"Upgrade Required"}


async def _respond(stream: trio.abc.SendStream, status: int, body: bytes | str, headers: list[tuple[bytes, bytes]] | None = None,
                   *, head_only: bool = False) -> None:
    """Send one complete HTTP/1.1 response, then the connection is to be closed."""
    data = body.encode() if isinstance(body, str) else body
    fields = [
        (b"content-length", str(len(data)).encode()),
        (b"connection", b"close"),
        (b"cache-control", b"no-cache"),
        (b"x-content-type-options", b"nosniff"),
        *(headers or []),
    ]
    if not any(key == b"content-type" for key, _ in fields):
        fields.append((b"content-type", b"text/plain; charset=utf-8"))
    writer = h11.Connection(h11.SERVER)
    # h11 answers requests it has parsed; feed it a minimal one so it lets us write a response
    writer.receive_data(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
    writer.next_event()
    out = writer.send(h11.Response(status_code=status, headers=fields, reason=_REASONS.get(status, b"")))
    if not head_only and data:
        out = (out or b"") + (writer.send(h11.Data(data=data)) or b"")
    await stream.send_all(out or b"")
