"""A run as people and CI read it: a timeline with each check's verdict, and JUnit XML."""

from __future__ import annotations

import enum
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

import attrs

from ..protocol import Error, Message, Ok
from ._format import Scenario, format_duration
from ..protocol._codec import converter as _converter
from ._match import Check, Delivery, plain
from ._writer import toml_value
from ._runner import Outcome, Report, describe_time

__all__ = ["Printer", "describe", "json_results", "junit_xml"]

_WIDTH = 120
_TIME_KEYS = ("at", "ts", "started_at", "ends_at", "renews_at", "ready_at", "expires_at")


def _value_text(name: str, value: Any, epoch: float) -> str:
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, float) and name in _TIME_KEYS and value > 1e8:
        return f"T+{format_duration(value - epoch)}" if value >= epoch else f"{value:g}"
    if isinstance(value, (frozenset, set)):
        return "{" + ",".join(sorted(_value_text("", v, epoch) for v in value)) + "}"
    if isinstance(value, tuple):
        return "[" + ",".join(_value_text("", v, epoch) for v in value) + "]"
    if attrs.has(type(value)):
        if type(value).__name__ == "Reading":
            return _value_text(name, value.value, epoch)
        if type(value).__name__ == "Position":
            return f"{value.lat:.4f},{value.lon:.4f}"
        return type(value).__name__
    if isinstance(value, str):
        return repr(value) if (" " in value or not value) else value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def describe(body: Message | Any, epoch: float = 0.0, limit: int | None = 100) -> str:
    """One line for a message body or result: its tag and its non-default fields.

    With a `limit`, nested tables (snapshots, settings, profiles) are left out and the line is
    cut with "…"; with `limit=None` every field is shown whole (`twin replay --verbose`).
    """
    tag = getattr(body, "TYPE", type(body).__name__)
    shown = []
    for f in attrs.fields(type(body)) if attrs.has(type(body)) else ():
        value = getattr(body, f.name)
        default = f.default
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            default = default.factory()  # type: ignore[union-attr]
        if value is None or value == default:
            continue
        if limit is None and (isinstance(value, dict) or f.name in _NESTED or _structured(value)):
            shown.append(f"{f.name}={_whole(value)}")
            continue
        if isinstance(value, dict) or f.name in _NESTED:
            continue
        shown.append(f"{f.name}={_value_text(f.name, value, epoch)}")
    text = ", ".join(shown)
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return f"{tag}({text})" if text else tag


_NESTED = ("snapshot", "settings", "profile")


def _structured(value: Any) -> bool:
    """A value the short line shows by its class name only (a Sharee, a list of DriverInfo)."""
    if isinstance(value, (tuple, list, frozenset, set)):
        return any(_structured(v) for v in value)
    return attrs.has(type(value)) and type(value).__name__ not in ("Reading", "Position")


def _whole(value: Any) -> str:
    data = plain(_converter.unstructure(value))
    try:
        return toml_value(data)
    except (TypeError, ValueError):  # nil somewhere inside: TOML cannot say it
        return json.dumps(data, ensure_ascii=False, default=str)


def reply_text(outcome: Outcome, epoch: float, whole: bool = False) -> str:
    if outcome.timed_out:
        return "no reply"
    reply = outcome.reply
    if reply is None:
        return ""
    body = reply.body
    if isinstance(body, Error):
        return f"error {body.code}: {body.message}"
    if isinstance(body, Ok):
        return "ok " + describe(body.result, epoch, limit=None if whole else 80)
    return describe(body, epoch, limit=None if whole else 100)


def delivery_text(d: Delivery, epoch: float, whole: bool = False) -> str:
    body = d.envelope.body
    who = d.to
    if body.TYPE == "alert":
        where = f" at {body.position.lat:.4f},{body.position.lon:.4f}" if body.position is not None else ""  # type: ignore[attr-defined]
        return f"{who} <- alert {body.alert.value} by {body.channel.value} from {body.car}: {body.text}{where}"  # type: ignore[attr-defined]
    text = describe(body, epoch, limit=None if whole else 100)
    return f"{who} <- {text}" + (f" from {d.envelope.sender}" if d.envelope.sender not in (getattr(body, 'car', None),) else "")


class Printer:
    """Writes a readable timeline as outcomes arrive.

    `verbose` adds state pushes and prints every reply, delivery and note whole (no "…"
    cuts); `quiet` prints only the steps that failed (with the scenario's heading) and the
    verdict of a failed scenario.
    """

    def __init__(self, out: TextIO, *, verbose: bool = False, quiet: bool = False) -> None:
        self.out, self.verbose, self.quiet = out, verbose, quiet
        self.scenario: Scenario | None = None
        self._heading: list[str] = []

    def line(self, text: str = "") -> None:
        print(text, file=self.out)

    def start(self, scenario: Scenario) -> None:
        self.scenario = scenario
        heading = [f"== {scenario.source}: {scenario.name}"]
        if scenario.story:
            heading.append(f"   {scenario.story}")
        for car in scenario.cars:
            plan = f"{car.plan.value}{'+navi' if car.plan.value == 'standard' and car.navi_package else ''}" if car.owner else "no contract"
            extras = [o for o in ("wifi", "dashcam") if getattr(car, o)]
            who = [f"owner {car.owner}"] if car.owner else []
            if car.sharees:
                who.append("sharees " + ", ".join(s.account for s in car.sharees))
            if car.keys:
                who.append("keys " + ", ".join(car.keys))
            if car.drivers:
                who.append("drivers " + ", ".join(d.account for d in car.drivers))
            heading.append(f"   {car.address}: {car.powertrain.value}, {plan}{' ' + '+'.join(extras) if extras else ''}; {'; '.join(who) or 'nobody linked'}")
        if self.quiet:
            self._heading = heading
        else:
            for text in heading:
                self.line(text)

    def outcome(self, outcome: Outcome) -> None:
        if self.quiet and all(c.passed for c in outcome.checks):
            return
        for text in self._heading:
            self.line(text)
        self._heading = []
        scenario = self.scenario
        assert scenario is not None
        epoch = scenario.epoch_s
        step = outcome.step
        pad = " " * 4
        if not self.quiet:
            for d in self._shown(outcome.waited):
                self.line(f"{describe_time(scenario, d.envelope.ts)}  {pad}{delivery_text(d, epoch, self.verbose)}")
        at = describe_time(scenario, epoch + (step.start if step.kind == "advance" else step.t))
        limit, whole = (None, True) if self.verbose else (100, False)
        if step.kind == "send":
            assert step.body is not None and step.sender is not None
            head = f"{step.sender[5:]} -> {step.target}: {describe(step.body, epoch, limit)}  =>  {reply_text(outcome, epoch, whole)}"
        elif step.kind == "report":
            refused = f"  =>  refused: {reply_text(outcome, epoch, whole)}" if outcome.reply is not None else ""
            head = f"{step.target} reports {describe(step.body, epoch, limit)}{refused}"
        elif step.kind == "advance":
            head = f"{format_duration(step.t - step.start)} pass"
        elif step.kind == "link":
            head = step.action + (f": {step.reason!r}" if step.reason else "")
        else:
            head = f"check {step.target}"
        note = f"  # {step.note}" if step.note else ""
        line = f"{at}  {head}{note}"
        self.line(line if self.verbose else line[: _WIDTH * 2])
        if not self.quiet:
            for d in self._shown(outcome.deliveries):
                self.line(f"{describe_time(scenario, d.envelope.ts)}  {pad}{delivery_text(d, epoch, self.verbose)}")
        for check in outcome.checks:
            if not (self.quiet and check.passed):
                self.check(check)

    def _shown(self, deliveries: Sequence[Delivery]) -> Iterable[Delivery]:
        return [d for d in deliveries if self.verbose or d.type != "state_changed"]

    def check(self, check: Check) -> None:
        indent = " " * 26
        if check.passed:
            self.line(f"{indent}pass {check.what}: {check.summary}")
            return
        self.line(f"{indent}FAIL {check.what}: {check.summary}")
        for d in check.diff:
            self.line(f"{indent}     {d}")

    def end(self, report: Report) -> None:
        failed = len(report.failures)
        if self.quiet and not failed:
            return
        verdict = "PASS" if not failed else "FAIL"
        self.line(
            f"{verdict} {report.scenario.source}: {len(report.checks)} checks, {failed} failed;"
            f" {format_duration(report.virtual_s)} virtual"
        )
        self.line()

    def error(self, source: str, message: str) -> None:
        self.line(message if message.startswith(source) else f"ERROR {source}: {message}")
        self.line()


def junit_xml(results: Sequence[tuple[str, Report | str]]) -> str:
    """JUnit XML: a testsuite per scenario file, a testcase per expectation, one for invariants.

    `results` pairs each file with its report, or with the error that kept it from running.
    """
    root = ET.Element("testsuites", name="twin replay")
    total = failures = errors = 0
    for source, result in results:
        suite = ET.SubElement(root, "testsuite", name=source)
        cases = fails = errs = 0
        if isinstance(result, str):
            case = ET.SubElement(suite, "testcase", classname=_classname(source), name="load and setup", time="0")
            ET.SubElement(case, "error", message=result.splitlines()[0][:200]).text = result
            cases, errs = 1, 1
        else:
            suite.set("time", f"{result.wall_s:.3f}")
            titles = _titles(result)
            for check in result.checks:
                if check.is_invariant:
                    continue
                cases += 1
                name = f"{titles.get(check.step, f'step {check.step}')} [{check.what}]"
                case = ET.SubElement(suite, "testcase", classname=_classname(source), name=name, time="0")
                if not check.passed:
                    fails += 1
                    ET.SubElement(case, "failure", message=check.summary[:200]).text = "\n".join((check.summary, *check.diff))
            if result.scenario.invariants:
                cases += 1
                case = ET.SubElement(suite, "testcase", classname=_classname(source), name="invariants", time="0")
                broken = [c for c in result.checks if c.is_invariant and not c.passed]
                if broken:
                    fails += 1
                    text = "\n".join(f"step {c.step} {c.what}: {c.summary}\n" + "\n".join("  " + d for d in c.diff) for c in broken)
                    ET.SubElement(case, "failure", message=f"{len(broken)} invariant violation(s)").text = text
        suite.set("tests", str(cases))
        suite.set("failures", str(fails))
        suite.set("errors", str(errs))
        total, failures, errors = total + cases, failures + fails, errors + errs
    root.set("tests", str(total))
    root.set("failures", str(failures))
    root.set("errors", str(errors))
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _titles(result: Any) -> dict[int, str]:
    """Step number -> 'step 3: alice -> car:c1 lock # why', for the steps a report ran."""
    steps = getattr(result.scenario, "steps", ())
    return {s.index: s.title for s in steps}


def json_results(results: Sequence[tuple[str, Report | str]]) -> dict[str, Any]:
    """The results as plain data for `twin replay --json`: per file its status, and per step
    what it did and each check with its diff; the same facts the timeline and JUnit show."""
    files: list[dict[str, Any]] = []
    for source, result in results:
        if isinstance(result, str):
            files.append({"source": source, "status": "error", "error": result, "checks": []})
            continue
        titles = _titles(result)
        steps = {s.index: s for s in getattr(result.scenario, "steps", ())}
        checks = []
        for c in result.checks:
            step = steps.get(c.step)
            checks.append({
                "step": c.step,
                "title": titles.get(c.step, f"step {c.step}"),
                "action": step.action if step is not None else None,
                "note": step.note if step is not None else "",
                "what": c.what,
                "passed": c.passed,
                "summary": c.summary,
                "diff": list(c.diff),
            })
        files.append({
            "source": source,
            "name": result.scenario.name,
            "status": "passed" if result.passed else "failed",
            "checks": checks,
            "failed": len(result.failures),
            "wall_s": round(result.wall_s, 6),
            "virtual_s": result.virtual_s,
        })
    counts = {k: sum(f["status"] == k for f in files) for k in ("passed", "failed", "error")}
    return {"files": files, **counts, "exit_status": 2 if counts["error"] else 1 if counts["failed"] else 0}


def _classname(source: str) -> str:
    stem = source.replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return "scenarios." + stem.replace(".", "_")
