"""docs/protocol.schema.json and the JS client's TypeScript declarations are generated from
the message registry; they must be current, and the schema must accept every frame the hub's
codec writes and refuse what its decoder refuses."""

from __future__ import annotations

import json
from typing import Any

import pytest

from twin.protocol import message_types
from twin.server._protocol_doc import _example
from twin.server._schema import OUTPUTS, body_name, method_name, render_schema


@pytest.mark.parametrize("path", list(OUTPUTS), ids=lambda p: p.name)
def test_generated_file_is_current(path: Any) -> None:
    assert path.read_text(encoding="utf-8") == OUTPUTS[path](), (
        f"{path.name} is stale: run `python -m twin.server._schema`"
    )


def _valid(value: Any, schema: dict[str, Any], root: dict[str, Any]) -> bool:
    """A validator for the part of JSON Schema 2020-12 the generator emits."""
    if "$ref" in schema:
        return _valid(value, root["$defs"][schema["$ref"].rsplit("/", 1)[1]], root)
    if "oneOf" in schema and sum(_valid(value, s, root) for s in schema["oneOf"]) != 1:
        return False
    if "anyOf" in schema and not any(_valid(value, s, root) for s in schema["anyOf"]):
        return False
    if "const" in schema and value != schema["const"]:
        return False
    if "enum" in schema and value not in schema["enum"]:
        return False
    kind = schema.get("type")
    checks = {
        "null": value is None, "boolean": type(value) is bool, "string": type(value) is str,
        "integer": type(value) is int, "number": type(value) in (int, float),
        "array": type(value) is list, "object": type(value) is dict,
    }
    if kind is not None and not checks[kind]:
        return False
    if kind == "object":
        props = schema.get("properties", {})
        if any(name not in value for name in schema.get("required", ())):
            return False
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if "propertyNames" in schema and not _valid(name, schema["propertyNames"], root):
                return False
            if name in props:
                if not _valid(item, props[name], root):
                    return False
            elif extra is False or (isinstance(extra, dict) and not _valid(item, extra, root)):
                return False
    if kind == "array":
        if not schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", len(value)):
            return False
        prefix = schema.get("prefixItems", [])
        if any(not _valid(v, s, root) for v, s in zip(value, prefix)):
            return False
        if "items" in schema and any(not _valid(v, schema["items"], root) for v in value[len(prefix):]):
            return False
    return True


SCHEMA = json.loads(render_schema())


@pytest.mark.parametrize("tag", sorted(message_types()))
def test_the_schema_accepts_what_the_codec_writes(tag: str) -> None:
    frame = _example(message_types()[tag])
    assert _valid(frame, SCHEMA, SCHEMA), frame


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "lock", "to": "car:1", "body": {"force": True}},  # unknown field
        {"type": "lock", "to": "car:1", "colour": "red"},  # unknown envelope key
        {"type": "lock", "body": {}},  # no target
        {"type": "set_hazards", "to": "car:1", "body": {"on": 1}},  # an int is not a bool
        {"type": "set_hazards", "to": "car:1", "body": {}},  # missing field
        {"type": "door_changed", "to": "car:1", "body": {"door": "sunroof", "open": True}},  # not a Door
        {"type": "teleport", "to": "car:1"},  # unknown type
        {"type": "ok", "to": "user:a", "body": {"result": {"type": "done"}}},  # a result has every field
    ],
)
def test_the_schema_refuses_what_the_decoder_refuses(frame: dict[str, Any]) -> None:
    assert not _valid(frame, SCHEMA, SCHEMA)


def test_declarations_name_every_message_and_command_method() -> None:
    ts = next(render() for path, render in OUTPUTS.items() if path.name == "twin-protocol.d.mts")
    for tag, cls in message_types().items():
        assert f"export interface {body_name(tag)} {{" in ts
        if cls.KIND == "command":
            assert f"  {method_name(tag)}(target: string, body" in ts
    assert "  lock(target: string, body?: LockBody, options?: CommandOptions): Promise<Snapshot>;" in ts
    assert "  setHazards(target: string, body: SetHazardsBody, options?: CommandOptions): Promise<Snapshot>;" in ts
