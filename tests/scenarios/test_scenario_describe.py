"""`twin describe` and docs/checks.md: generated from the registry and the model, and true to
them (every message field, every state field, every code; the refusals the examples see)."""

from __future__ import annotations

import re
import typing
from pathlib import Path
from typing import Any

import pytest

from twin.cli import main as twin
from twin.errors import Code
from twin.model import new_operator, new_user, new_vehicle
from twin.protocol import fields_of, message_types
from twin.scenarios import load_scenario
from twin.scenarios._describe import MEANINGS, describe_message, refusals, render, state_fields
from twin.scenarios._match import plain_state
from twin.server._protocol_doc import _type_name

ROOT = Path(__file__).parents[2]
DOC = ROOT / "docs" / "checks.md"
EXAMPLES = sorted((ROOT / "examples" / "scenarios").glob("*.toml"))


def test_docs_checks_md_is_up_to_date() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), "docs/checks.md is stale: run `python -m twin.scenarios._describe > docs/checks.md`"


@pytest.mark.parametrize("tag", sorted(message_types()))
def test_every_message_with_every_field_and_its_type(tag: str, capsys: pytest.CaptureFixture[str]) -> None:
    cls = message_types()[tag]
    assert twin(["describe", tag]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"### `{tag}` ({cls.KIND})")
    hints = typing.get_type_hints(cls)
    for name in fields_of(cls):
        assert f"| `{name}` | {_type_name(hints[name])} |" in text
    assert text.strip() in DOC.read_text(encoding="utf-8")


def _paths(data: Any, path: str) -> set[str]:
    """Leaf paths of plain data, with list elements as [] (a reading is a leaf)."""
    if isinstance(data, dict) and set(data) != {"value", "at"} and data:
        return {p for k, v in data.items() for p in _paths(v, f"{path}.{k}")}
    if isinstance(data, list) and data and isinstance(data[0], dict) and set(data[0]) != {"value", "at"}:
        return {p for v in data for p in _paths(v, f"{path}[]")}
    return {path}


def test_every_state_field_is_described() -> None:
    described = {f.path for f in state_fields()}
    car = new_vehicle("c1", owner="alice")
    actual = _paths(plain_state(car), "car") | _paths(plain_state(new_user("alice")), "user") | _paths(plain_state(new_operator()), "operator")
    for path in sorted(actual):
        generic = re.sub(r"^(car\.snapshot\.(?:doors_open|windows_pct))\.\w+", r"\1.<key>", path)
        assert generic in described, f"{path} is in the state but not in `twin describe state`"
    assert set(MEANINGS) <= described  # no meaning for a field that is gone
    units = {f.path: f.unit for f in state_fields()}
    assert units["car.climate.used_s"] == "seconds" and units["car.status.windows_pct"] == "percent"
    assert units["car.software.stage_ends_at"].startswith("model time")
    for name in ("car.active_driver", "car.applied_profile", "car.status.power", "car.contract.handover"):
        assert any(f.path.startswith(name) and f.meaning for f in state_fields()), name


def test_every_code_is_described(capsys: pytest.CaptureFixture[str]) -> None:
    assert twin(["describe", "errors"]) == 0
    text = capsys.readouterr().out
    for code in Code:
        assert f"| `{code.value}` |" in text
    assert "climate_schedule_add" in refusals()[Code.NOT_EQUIPPED]  # the remote-start kit
    assert set(refusals()[Code.DOOR_OPEN]) == {"lock", "key_use"}


def test_every_refusal_the_examples_expect_is_listed_for_its_command() -> None:
    # the source reading against what really happens: each `expect.error` of the examples
    seen = 0
    for path in EXAMPLES:
        for step in load_scenario(path).steps:
            if step.expect.error is not None and step.body is not None:
                assert step.body.TYPE in refusals()[Code(step.expect.error)], (path.name, step.index)
                seen += 1
    assert seen > 20


def test_unknown_topics_say_what_there_is(capsys: pytest.CaptureFixture[str]) -> None:
    assert twin(["describe", "stat"]) == 2
    assert "did you mean 'state'?" in capsys.readouterr().out
    assert twin(["describe"]) == 0
    listing = capsys.readouterr().out
    assert all(tag in listing for tag in message_types())
    assert twin(["describe", "state"]) == 0
    assert "| `car.climate.used_s` | float (integers accepted) | seconds |" in capsys.readouterr().out
