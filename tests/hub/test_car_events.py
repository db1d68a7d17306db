"""`twin car EVENT FIELD=VALUE ...`: how the command line becomes a typed event, or a clear error."""

from __future__ import annotations

import pytest

from twin.client._car import parse_event
from twin.errors import Code, ProtocolError
from twin.protocol import AlarmSounding, Door, DoorChanged, PositionReported


def test_values_are_toml_literals_or_bare_strings() -> None:
    assert parse_event("alarm_sounding", ['cause="door forced"']) == AlarmSounding(cause="door forced")
    assert parse_event("door_changed", ["door=trunk", "open=true"]) == DoorChanged(door=Door.TRUNK, open=True)
    assert parse_event("position_reported", ["lat=35", "lon=139.5"]) == PositionReported(lat=35.0, lon=139.5)


def test_an_unknown_event_gets_a_suggestion_and_the_list() -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_event("door_change", [])
    assert "did you mean door_changed" in caught.value.message and "alarm_sounding" in caught.value.message
    with pytest.raises(ProtocolError):
        parse_event("lock", [])  # a command, not an event


@pytest.mark.parametrize(
    "pairs, code, words",
    [
        (["door=trunk"], Code.MISSING_FIELD, "open"),
        (["door=trunk", "open=yes"], Code.WRONG_TYPE, "open"),
        (["door=boot", "open=true"], Code.WRONG_TYPE, "front_left"),
        (["door=trunk", "open=true", "colour=red"], Code.WRONG_TYPE, "colour"),
        (["trunk"], Code.MALFORMED, "name=value"),
    ],
)
def test_bad_fields_say_what_the_event_takes(pairs: list[str], code: Code, words: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_event("door_changed", pairs)
    assert caught.value.code is code and words in caught.value.message
    assert "door_changed takes door, open" in caught.value.message
