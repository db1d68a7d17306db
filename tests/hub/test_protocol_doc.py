"""docs/protocol.md is generated from the message registry; it must be up to date."""

from __future__ import annotations

from pathlib import Path

import json
import re

from twin.model import OPERATOR, new_operator
from twin.protocol import Envelope, Error, message_types, structure_body
from twin.server._protocol_doc import render, route

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


def test_docs_protocol_md_is_up_to_date() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/protocol.md is stale: run `python -m twin.server._protocol_doc > docs/protocol.md`"
    )


def test_every_message_is_in_the_catalogue() -> None:
    text = DOC.read_text(encoding="utf-8")
    for tag in message_types():
        assert f"#### `{tag}`" in text


def test_twin_serve_parses_its_options() -> None:
    from twin.cli import build_parser

    args = build_parser().parse_args(["serve", "--port", "0", "--data", "x.sqlite3", "--demo"])
    assert (args.command, args.host, args.port, args.data, args.demo) == ("serve", "127.0.0.1", 0, "x.sqlite3", True)


def test_example_frames_go_where_such_messages_really_go() -> None:
    # the desk takes exactly the commands and notices whose example frame is addressed to it
    text = DOC.read_text(encoding="utf-8")
    frames = [json.loads(m) for m in re.findall(r"^(\{\"type\": .*\})$", text, flags=re.M)]
    assert {f["type"] for f in frames} == set(message_types())
    for frame in frames:
        cls = message_types()[frame["type"]]
        assert (frame["from"], frame["to"], frame["id"]) == route(cls)
        if cls.KIND not in ("command", "notice"):
            continue
        sender = frame["from"] or "user:alice@example.com"
        body = structure_body(frame["type"], frame["body"])
        _, out = OPERATOR.step(new_operator(), Envelope(body, sender=sender, target="operator", id=frame["id"]), 1.5)
        refused = [e for e in out if isinstance(e.body, Error) and "does not take" in e.body.message]
        assert (frame["to"] == "operator") == (not refused), frame
    welcome = next(f for f in frames if f["type"] == "welcome")
    assert (welcome["from"], welcome["to"]) == ("hub", "user:alice@example.com")
