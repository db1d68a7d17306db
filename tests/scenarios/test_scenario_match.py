"""The matcher's rules, one test each (each of them failed on the matcher before the rules were
written down), and the mutation test: every expectation of every example can fail."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from twin.errors import Code
from twin.protocol import message_types
from twin.scenarios import Expect, ScenarioError, load_scenario, parse_scenario, replay
from twin.scenarios._format import format_duration, parse_duration
from twin.scenarios._match import ABSENT, NULL, mismatches

EXAMPLES = Path(__file__).parents[2] / "examples" / "scenarios"
ALL = sorted(EXAMPLES.glob("*.toml"))
ONE_CAR = '[scenario]\naccounts = ["bob"]\n[[car]]\nid = "c1"\nowner = "alice"\n'


def fails(expected: Any, actual: Any) -> bool:
    return bool(mismatches(expected, actual, 0.0))


# --- the rules


def test_an_empty_table_or_list_means_empty() -> None:
    assert fails({"garage": {}}, {"garage": {"car:c1": "owner"}})
    assert not fails({"garage": {}}, {"garage": {}})
    assert fails({"drivers": []}, {"drivers": [{"account": "alice"}]})
    assert not fails({"drivers": []}, {"drivers": []})
    assert fails({"position": {}}, {"position": {"value": None, "at": None}})  # a reading is not empty
    assert not fails({"garage": {"car:c1": "owner"}}, {"garage": {"car:c1": "owner", "car:c2": "sharee"}})  # non-empty: partial


def test_absent_is_a_missing_key_and_null_a_key_without_value() -> None:
    assert not fails({"garage": {"car:c1": ABSENT}}, {"garage": {}})
    assert fails({"garage": {"car:c1": ABSENT}}, {"garage": {"car:c1": "owner"}})
    assert fails({"active_driver": ABSENT}, {"active_driver": None})  # there, but null
    assert not fails({"active_driver": NULL}, {"active_driver": None})
    assert fails({"guards": {"car:c1": NULL}}, {"guards": {}})  # not there at all
    assert fails({"active_driver": NULL}, {"active_driver": "alice"})


def test_every_string_compares_exactly_unless_asked_to_contain() -> None:
    text = "the alarm is sounding (door forced)"
    assert fails("door forced", text)
    assert not fails(text, text)
    assert fails(text.upper(), text)
    assert not fails({"contains": "DOOR forced"}, text)  # contains ignores case
    assert fails({"contains": "window"}, text)
    assert fails({"contains": "x"}, None)
    assert not fails({"text": {"contains": "forced"}}, {"text": text})


def test_no_field_is_named_like_an_operator() -> None:
    # `{ contains = "..." }` can never be read as a partial table of a real message
    for cls in message_types().values():
        assert "contains" not in {a.name for a in attrs.fields(cls)}


def _run(steps: str) -> tuple[bool, list[str]]:
    report = replay(parse_scenario(ONE_CAR + steps, source="t.toml"))
    return report.passed, [f"{c.what}: {c.summary}" for c in report.failures]


def test_a_reply_message_is_exact_or_contains() -> None:
    refused = '[[step]]\nfrom = "bob"\nsend = "unlock"\n'
    assert _run(refused + 'expect = { error = "not_authorized", message = "owner" }')[0] is False
    assert _run(refused + 'expect = { error = "not_authorized", message = { contains = "OWNER may unlock" } }')[0]
    assert _run(refused + "expect = { error = \"not_authorized\", message = \"only the car's owner may unlock the car remotely\" }")[0]


def test_an_alert_text_is_exact_or_contains() -> None:
    alarm = '[[step]]\nreport = "alarm_sounding"\nbody = { cause = "door forced" }\n'
    ok = 'expect.alerts = [{ to = "alice", alert = "alarm", channel = "email", text = { contains = "DOOR FORCED" } }, { to = "alice", alert = "alarm", channel = "push" }]'
    assert _run(alarm + ok)[0]
    assert not _run(alarm + ok.replace('{ contains = "DOOR FORCED" }', '"door forced"'))[0]


def test_absent_takes_field_filters() -> None:
    alarm = '[[step]]\nreport = "alarm_sounding"\nbody = { cause = "door forced" }\n'
    assert _run(alarm + 'expect.absent = [{ type = "alert", alert = "start" }]')[0]
    passed, failures = _run(alarm + 'expect.absent = ["garage_changed", { type = "alert", to = "alice", channel = "push" }]')
    assert not passed and failures == ["absent: 1 delivery(ies) expected absent"]
    assert _run(alarm + 'expect.absent = [{ type = "alert", text = { contains = "window" } }]')[0]


@pytest.mark.parametrize(
    ("expect", "message"),
    [
        ("expect.state = {}", "state = {} would ask for a state with nothing in it"),
        ('expect.result = {}', "result = {} would ask for a result with nothing in it"),
        ('expect.state = { drivers = ["absent"] }', '"absent" says a table has no such key'),
        ('expect.state = { name = { contains = 1 } }', "write { contains = \"text\" } alone"),
        ('expect = { error = "conflict", message = 3 }', 'message must be the whole text or { contains = "part" }'),
        ('expect.absent = [{ type = "alert", chanel = "push" }]', "unknown key 'chanel' (did you mean 'channel'?)"),
        ('expect.absent = [3]', "expected a wire tag or a table"),
    ],
)
def test_expectations_that_cannot_mean_what_they_say_are_refused(expect: str, message: str) -> None:
    step = '[[step]]\nfrom = "alice"\nsend = "remote_check"\n' if "state" not in expect else '[[step]]\ncheck = "c1"\n'
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(ONE_CAR + step + expect, source="t.toml")
    assert message in caught.value.message


# --- every example's checks can fail


def _leaf_mutants(value: Any, in_table: bool = False) -> Iterator[Any]:
    """`value` with one leaf changed so that what matched before cannot match any more."""
    if isinstance(value, dict) and set(value) == {"contains"}:
        yield {"contains": value["contains"] + " (mutated)"}
    elif isinstance(value, dict):
        if not value:
            yield NULL  # an empty table is there and empty: it is neither null nor absent
            yield ABSENT
        for key, sub in value.items():
            for mutant in _leaf_mutants(sub, in_table=True):
                yield {**value, key: mutant}
    elif isinstance(value, list):
        if not value:
            yield NULL
        for i, sub in enumerate(value):
            for mutant in _leaf_mutants(sub):
                yield [*value[:i], mutant, *value[i + 1:]]
    elif isinstance(value, bool):
        yield not value
    elif isinstance(value, (int, float)):
        yield value + 1
    elif value == NULL:
        yield ABSENT if in_table else "null (mutated)"
    elif value == ABSENT:
        yield NULL
    elif isinstance(value, str) and value.startswith("T+"):
        yield "T+" + format_duration(parse_duration(value[2:]) + 1)
    elif isinstance(value, str):
        yield value + " (mutated)"


def _pattern_list_mutants(patterns: tuple[Any, ...], exact: bool) -> Iterator[tuple[Any, ...]]:
    for i, pattern in enumerate(patterns):
        for mutant in _leaf_mutants(pattern):
            if mutant.get("type") == pattern.get("type"):  # a wrong type is too easy a mutant
                yield (*patterns[:i], mutant, *patterns[i + 1:])
        if exact:
            yield patterns[:i] + patterns[i + 1:]  # one alert fewer than delivered
    if exact:
        yield (*patterns, {"type": "alert", "to": "nobody"})  # one more than delivered


def expect_mutants(e: Expect) -> Iterator[Expect]:
    """Variants of `e`, each wrong in one place; the replay must fail every one of them."""
    if e.ok is True and e.result is None:
        yield attrs.evolve(e, ok=False)
    if e.ok is False:
        yield attrs.evolve(e, ok=True)
    if e.error is not None:
        codes = [c.value for c in Code]
        yield attrs.evolve(e, error=codes[(codes.index(e.error) + 1) % len(codes)])
    if e.message is not None:
        yield from (attrs.evolve(e, message=m) for m in _leaf_mutants(e.message))
    for name in ("result", "state"):
        value = getattr(e, name)
        if value is not None:
            yield from (attrs.evolve(e, **{name: m}) for m in _leaf_mutants(dict(value)))
    if e.alerts is not None:
        yield from (attrs.evolve(e, alerts=m) for m in _pattern_list_mutants(e.alerts, exact=True))
    if e.notices is not None:
        yield from (attrs.evolve(e, notices=m) for m in _pattern_list_mutants(e.notices, exact=False))
    if e.absent is not None:  # what must not come, asked for instead
        yield from (attrs.evolve(e, absent=None, notices=(p,)) for p in e.absent)


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.stem)
def test_every_expectation_of_every_example_can_fail(path: Path) -> None:
    scenario = load_scenario(path)
    mutants = {s.index: list(expect_mutants(s.expect)) for s in scenario.steps}
    assert sum(map(len, mutants.values())) >= len([s for s in scenario.steps if not s.expect.is_empty()])
    rounds = max(map(len, mutants.values()), default=0)
    for r in range(rounds):  # one mutant per step per replay: the checks of a step do not change the run
        steps = [attrs.evolve(s, expect=mutants[s.index][r]) if r < len(mutants[s.index]) else s for s in scenario.steps]
        report = replay(attrs.evolve(scenario, steps=tuple(steps)), invariants=False)
        failed = {c.step for c in report.failures}
        survived = [(i, m[r]) for i, m in mutants.items() if r < len(m) and i not in failed]
        assert not survived, f"{path.name}: these wrong expectations passed: {survived}"


@pytest.mark.parametrize(
    ("example", "drop", "what"),
    [
        ("01_night_break_in.toml", "guard_extension_answer", "guards = {}"),
        ("05_sharing.toml", "share_revoke", "garage = {}"),
        ("14_selling_the_car.toml", "contract_cancel", "alert_prefs = {}"),
    ],
)
def test_the_empty_checks_of_the_examples_fail_when_something_is_left(example: str, drop: str, what: str) -> None:
    # each of these once read `{}` as "anything"; without the step that empties it, it must fail
    scenario = load_scenario(EXAMPLES / example)
    key = what.split(" = ")[0]
    checked = [s for s in scenario.steps if s.kind == "check" and (s.expect.state or {}).get(key) == {}][-1]
    only = attrs.evolve(checked, expect=Expect(state={key: {}}))  # that check alone, not its neighbours
    kept = tuple(
        only if s is checked else s
        for s in scenario.steps
        if not (s.body is not None and s.body.TYPE == drop and s.expect.error is None)
    )
    assert len(kept) < len(scenario.steps)
    report = replay(attrs.evolve(scenario, steps=kept), invariants=False)
    assert any(c.step == checked.index and c.what == "state" for c in report.failures)
