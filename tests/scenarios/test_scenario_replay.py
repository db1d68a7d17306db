"""Replaying scenarios: every example passes, the same input prints the same output, virtual
times are exact, failures come with a diff, the exit status and JUnit XML tell CI."""

from __future__ import annotations

import io
import json
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from twin.cli import main as twin
from twin.scenarios import Printer, load_scenario, parse_scenario, replay

EXAMPLES = Path(__file__).parents[2] / "examples" / "scenarios"
ALL = sorted(EXAMPLES.glob("*.toml"))


def timeline(path_or_text: Path | str) -> tuple[str, bool]:
    scenario = load_scenario(path_or_text) if isinstance(path_or_text, Path) else parse_scenario(path_or_text, source="t.toml")
    out = io.StringIO()
    printer = Printer(out, verbose=True)
    printer.start(scenario)
    report = replay(scenario, on_outcome=printer.outcome)
    printer.end(report)
    return out.getvalue(), report.passed


def test_the_library_has_a_scenario_per_story() -> None:
    assert len(ALL) >= 15


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.stem)
def test_every_example_passes(path: Path) -> None:
    report = replay(load_scenario(path))
    assert report.failures == (), "\n".join(f"step {c.step} {c.what}: {c.summary}\n  " + "\n  ".join(c.diff) for c in report.failures)
    assert any(c.passed for c in report.checks), "an example should check something"


def test_same_input_same_output() -> None:
    for path in (EXAMPLES / "01_night_break_in.toml", EXAMPLES / "06_digital_keys.toml", EXAMPLES / "17_wifi.toml"):
        first = timeline(path)
        assert all(timeline(path) == first for _ in range(3))


def test_a_day_of_virtual_time_takes_well_under_a_second() -> None:
    text = """
[[car]]
id = "c1"
owner = "alice"
sharees = ["bob"]
""" + "".join(
        f"""
[[step]]
at = "{h}h"
report = "position_reported"
body = {{ lat = 35.0, lon = {139 + h / 100} }}
[[step]]
from = "{'alice' if h % 2 else 'bob'}"
send = "remote_check"
expect.ok = true
"""
        for h in range(25)
    ) + """
[[step]]
advance = "30m"
"""
    scenario = parse_scenario(text, source="day.toml")
    started = time.perf_counter()
    report = replay(scenario)
    wall = time.perf_counter() - started
    assert report.passed
    assert report.virtual_s == 24.5 * 3600  # exact: the mock clock jumps straight to each step
    assert [o.now - scenario.epoch_s for o in report.outcomes][:4] == [0.0, 0.0, 3600.0, 3600.0]
    assert wall < 1.0


def test_timers_fire_at_exact_virtual_times() -> None:
    scenario = load_scenario(EXAMPLES / "01_night_break_in.toml")
    report = replay(scenario)
    prompts = [d for o in report.outcomes for d in o.deliveries if getattr(d.envelope.body, "kind", "") == "guard_extension_prompt"]
    (prompt,) = prompts
    assert prompt.envelope.ts - scenario.epoch_s == 7 * 3600 + 16 * 60


FAILING = """
[[car]]
id = "c1"
owner = "alice"
sharees = ["bob"]

[[step]]
from = "bob"
send = "unlock"
expect = { ok = true }

[[step]]
report = "alarm_sounding"
expect.alerts = [
  { to = "alice", alert = "alarm", channel = "email" },
  { to = "carol", alert = "alarm", channel = "push" },
]

[[step]]
at = "10m"
check = "c1"
note = "the owner is still alice"
expect.state = { contract = { owner = "bob" }, status = { locked = false } }

[[step]]
from = "alice"
send = "remote_check"
expect.result = { locked = { value = true, at = "T+5m" } }
"""


def test_failures_come_with_a_diff_of_expected_against_actual() -> None:
    text, passed = timeline(FAILING)
    assert not passed
    assert "FAIL reply: expected ok, got error not_authorized: only the car's owner may unlock the car remotely" in text
    assert "- ok\n" in text and "+ error not_authorized" in text
    assert "FAIL alerts: 1 expected alert(s) missing, 3 unexpected" in text
    assert '- { to = "carol", alert = "alarm", channel = "push" }' in text
    assert '+ { to = "bob", alert = "alarm", channel = "email", car = "car:c1", text = "the alarm is sounding (intrusion)" }' in text
    assert '- contract.owner = "bob"\n' in text and '+ contract.owner = "alice"\n' in text
    assert "- status.locked = false" in text and "+ status.locked = true" in text  # a reported value compares by value
    assert '- locked.at = "T+5m"' in text and "+ locked.at = null" in text
    assert "FAIL t.toml: 4 checks, 4 failed" in text


def test_replay_exit_status_and_junit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(FAILING)
    broken = tmp_path / "broken.toml"
    broken.write_text("[[step]]\nsend = 1\n")
    junit = tmp_path / "junit.xml"

    assert twin(["replay", "-q", str(EXAMPLES / "02_doors_left_unlocked.toml")]) == 0
    assert twin(["replay", "-q", str(EXAMPLES / "02_doors_left_unlocked.toml"), str(bad)]) == 1
    assert twin(["replay", "-q", str(bad), str(broken), "--junit", str(junit)]) == 2
    out = capsys.readouterr().out
    assert "broken.toml: step 1: send must be a string, got 1" in out
    assert "replayed 2 scenario(s): 0 passed, 1 failed, 1 could not run" in out

    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("6", "4", "1")
    suites = {s.get("name"): s for s in root}
    cases = {c.get("name"): c for c in suites[str(bad)]}
    assert set(cases) == {
        "step 1: bob -> car:c1 unlock [reply]",
        "step 2: car:c1 reports alarm_sounding [alerts]",
        "step 3: check car:c1 # the owner is still alice [state]",
        "step 4: alice -> car:c1 remote_check [reply]",
        "invariants",
    }
    failure = cases["step 1: bob -> car:c1 unlock [reply]"].find("failure")
    assert failure is not None and "+ error not_authorized" in (failure.text or "")
    assert cases["invariants"].find("failure") is None
    assert suites[str(broken)].find("testcase/error") is not None


def test_quiet_prints_only_failures(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(FAILING)
    twin(["replay", "-q", str(EXAMPLES / "05_sharing.toml"), str(bad)])
    out = capsys.readouterr().out
    assert "05_sharing" not in out
    assert "bob -> car:c1: unlock" in out and "FAIL reply" in out
    assert "pass " not in out


def test_a_folder_replays_every_scenario_in_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert twin(["replay", "-q", str(EXAMPLES)]) == 0
    assert f"replayed {len(ALL)} scenario(s): {len(ALL)} passed" in capsys.readouterr().out


def test_setup_refused_by_the_rules_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lite_keys = tmp_path / "lite_keys.toml"
    lite_keys.write_text('[[car]]\nid = "c1"\nowner = "a"\nplan = "lite"\nkeys = ["b"]\n')
    assert twin(["replay", str(lite_keys)]) == 2
    assert "setup of car:c1 failed: a -> key_issue was refused (not_in_plan" in capsys.readouterr().out


def test_verbose_prints_replies_and_deliveries_whole(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(EXAMPLES / "05_sharing.toml")
    assert twin(["replay", path]) == 0
    short = capsys.readouterr().out
    assert twin(["replay", "-v", path]) == 0
    whole = capsys.readouterr().out
    assert "…" in short and "…" not in whole
    assert "sharees=[Sharee]" in short  # a list of tables, shown by its class only
    assert 'sharees=[{ account = "bob", functions = ["car_finder", "remote_check"], accepted = false }]' in whole
    assert "share_offer(car=car:s1, owner=alice, functions={car_finder,remote_check})" in whole


def test_json_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad, broken, out = tmp_path / "bad.toml", tmp_path / "broken.toml", tmp_path / "r.json"
    bad.write_text(FAILING)
    broken.write_text("[[step]]\nsend = 1\n")
    assert twin(["replay", "-q", str(bad), str(broken), str(EXAMPLES / "02_doors_left_unlocked.toml"), "--json", str(out)]) == 2
    data = json.loads(out.read_text())
    assert (data["passed"], data["failed"], data["error"], data["exit_status"]) == (1, 1, 1, 2)
    first, second, third = data["files"]
    assert (first["status"], first["failed"], second["status"], third["status"]) == ("failed", 4, "error", "passed")
    assert "send must be a string" in second["error"]
    check = first["checks"][0]
    assert check == {
        "step": 1, "title": "step 1: bob -> car:c1 unlock", "action": "bob -> car:c1 unlock", "note": "", "what": "reply",
        "passed": False, "summary": check["summary"], "diff": ["- ok", "+ error not_authorized: only the car's owner may unlock the car remotely"],
    }


def test_step_selection_runs_the_earlier_steps_unchecked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(FAILING)
    junit = tmp_path / "j.xml"
    assert twin(["replay", str(bad), "--step", "3", "--junit", str(junit)]) == 1
    out = capsys.readouterr().out
    assert "check car:c1" in out and "unlock" not in out and "alarm_sounding" not in out and "remote_check" not in out
    assert "FAIL state" in out and "1 failed" in out
    names = [c.get("name") for c in ET.parse(junit).getroot().iter("testcase")]
    assert names == ["step 3: check car:c1 # the owner is still alice [state]", "invariants"]
    # the state checked at step 3 is the one steps 1 and 2 left: the alarm sounded on the way
    assert twin(["replay", "-q", str(bad), "-k", "STILL ALICE"]) == 1
    assert "FAIL state" in capsys.readouterr().out
    assert twin(["replay", "-q", str(bad), "-k", "unlock", "--step", "1-2"]) == 1
    out = capsys.readouterr().out
    assert "bob -> car:c1: unlock" in out and "alarm_sounding" not in out
    assert twin(["replay", "-q", str(EXAMPLES / "02_doors_left_unlocked.toml"), "--step", "2,4-5"]) == 0
    assert twin(["replay", "-q", str(bad), "-k", "no such step"]) == 2
    assert twin(["replay", str(bad), "--step", "0"]) == 2
    assert "not a step number" in capsys.readouterr().err
