"""docs/protocol.md is generated from the message registry; it must be up to date."""

from __future__ import annotations

from pathlib import Path

from twin.protocol import message_types
from twin.server._protocol_doc import render

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
