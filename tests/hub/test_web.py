"""The hub's front: the web app over plain HTTP and browser origin checks, on the hub's own
port, over real sockets on loopback (the rules of `test_hub.py`: loopback, port 0, an absolute
`fail_after` on every test, the client closes first)."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from trio_websocket import ConnectionRejected, wrap_client_stream

from twin.client import open_app_session
from twin.server import HubConfig
from twin.server._web import WebApp, origin_allowed, own_origins

from .test_hub import PASSWORD, running_hub


async def _http(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """One raw HTTP exchange: status, headers (lower-cased names) and body."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(request)
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict((k.lower(), v.strip()) for k, v in (line.split(":", 1) for line in lines[1:]))
    return int(lines[0].split()[1]), headers, body


def _get(path: str, *, method: str = "GET") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: test\r\n\r\n".encode()


async def test_the_web_app_is_served_on_the_hub_port(tmp_path: Path) -> None:
    web = WebApp(root=tmp_path / "site")
    web.root.mkdir()
    (web.root / "index.html").write_text("<h1>garage</h1>")
    (web.root / "app.mjs").write_text("export {}")
    web.files["demo.json"] = b'{"cars": []}'
    with trio.fail_after(20):
        async with running_hub(tmp_path / "hub.sqlite3", web=web) as (hub, url):
            status, headers, body = await _http(hub.port, _get("/app/"))
            assert (status, headers["content-type"], body) == (200, "text/html; charset=utf-8", b"<h1>garage</h1>")
            status, headers, body = await _http(hub.port, _get("/app/app.mjs"))
            assert (status, headers["content-type"], body) == (200, "text/javascript; charset=utf-8", b"export {}")
            assert (await _http(hub.port, _get("/app/demo.json")))[2] == b'{"cars": []}'
            status, headers, body = await _http(hub.port, _get("/app/app.mjs", method="HEAD"))
            assert (status, headers["content-length"], body) == (200, "9", b"")
            status, headers, _ = await _http(hub.port, _get("/"))
            assert (status, headers["location"]) == (302, "/app/")
            assert (await _http(hub.port, _get("/app/../hub.sqlite3")))[0] == 404
            assert (await _http(hub.port, _get("/app/%2e%2e/hub.sqlite3")))[0] == 404
            assert (await _http(hub.port, _get("/app/nothing.js")))[0] == 404
            assert (await _http(hub.port, _get("/app/", method="POST")))[0] == 405
            # the websocket on the same port still works
            await hub.create_account("alice@example.com", PASSWORD)
            async with open_app_session(url, email="alice@example.com", password=PASSWORD) as alice:
                assert alice.address == "user:alice@example.com"


async def test_without_a_web_app_plain_http_is_told_to_upgrade(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with running_hub(tmp_path / "hub.sqlite3") as (hub, _):
            status, _, body = await _http(hub.port, _get("/app/"))
            assert status == 426 and b"open a websocket" in body
            status, _, _ = await _http(hub.port, b"\x16\x03\x01 not http at all\r\n\r\n")
            assert status == 400


async def _upgrade(url: str, origin: str | None) -> None:
    """Open a websocket sending `origin` (None: no header) and close it; owns its TCP stream
    (trio-websocket's own client leaves it open when the upgrade is rejected)."""
    port = int(url.rsplit(":", 1)[1].strip("/"))
    headers = [("Origin", origin)] if origin is not None else None
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    try:
        async with trio.open_nursery() as nursery:
            ws = await wrap_client_stream(nursery, stream, "127.0.0.1", "/", extra_headers=headers)
            await ws.aclose()
    except* ConnectionRejected as group:
        raise group.exceptions[0] from None
    finally:
        await trio.aclose_forcefully(stream)


async def test_a_browser_page_from_another_origin_is_refused_with_403(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with running_hub(tmp_path / "hub.sqlite3", allowed_origins=frozenset({"https://app.example.com"})) as (_, url):
            with pytest.raises(ConnectionRejected) as rejected:
                await _upgrade(url, "https://evil.example.net")
            assert rejected.value.status_code == 403
            assert rejected.value.body is not None and b"origin https://evil.example.net is not allowed" in rejected.value.body
            await _upgrade(url, "https://app.example.com")  # listed
            await _upgrade(url, None)  # not a browser


async def test_the_web_app_allows_its_own_origin_only(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with running_hub(tmp_path / "hub.sqlite3", web=WebApp()) as (hub, url):
            await _upgrade(url, f"http://127.0.0.1:{hub.port}")
            await _upgrade(url, f"http://localhost:{hub.port}")
            for other in (f"http://127.0.0.1:{hub.port + 1}", "null", f"http://evil.example:{hub.port}"):
                with pytest.raises(ConnectionRejected) as rejected:
                    await _upgrade(url, other)
                assert rejected.value.status_code == 403


def test_origin_rules() -> None:
    assert origin_allowed(None, frozenset())
    assert not origin_allowed("http://a.example", frozenset())
    assert origin_allowed("HTTP://A.example/", frozenset({"http://a.example"}))
    assert own_origins("127.0.0.1", 8765) == {"http://127.0.0.1:8765", "http://localhost:8765", "http://[::1]:8765"}
    assert own_origins("192.0.2.7", 80) == {"http://192.0.2.7:80"}
    assert HubConfig().allowed_origins == frozenset()
