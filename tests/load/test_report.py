"""The pure parts of `twin load`: exact histogram merging, thresholds, profiles, report files."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

import twin.load
from twin.load import (
    DEFAULT_PROFILE,
    Profile,
    build_report,
    check_thresholds,
    load_profile,
    merge,
    new_histogram,
    parse_threshold,
    summary,
    write_csv,
    write_svg,
)
from twin.load._hist import encode, record

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "load"


def test_exports() -> None:
    for name in twin.load.__all__:
        assert getattr(twin.load, name) is not None
        assert not name.startswith("_")


@pytest.mark.parametrize("parts", [1, 2, 3, 7])
def test_merged_histograms_equal_one_histogram_of_all_samples(parts: int) -> None:
    rng = random.Random(parts)
    samples = [rng.lognormvariate(-5, 1.5) for _ in range(20_000)] + [0.0000001, 42.0]
    whole = new_histogram()
    pieces = [new_histogram() for _ in range(parts)]
    for s in samples:
        record(whole, s)
        record(pieces[rng.randrange(parts)], s)
    merged = merge(encode(p) for p in pieces)  # through the wire encoding, as workers ship them
    assert merged.get_total_count() == whole.get_total_count() == len(samples)
    assert merged.equals(whole)
    for p in (0, 50, 90, 99, 99.9, 99.99, 100):
        assert merged.get_value_at_percentile(p) == whole.get_value_at_percentile(p)
    assert summary(merged) == summary(whole)


@pytest.mark.parametrize("n", [0, 1, 3, 5_000])
def test_summary_gives_hdrh_own_figures(n: int) -> None:
    """`summary` computes percentiles in one pass and the mean from the counts: the numbers
    are exactly those of hdrh's own (slower) `get_value_at_percentile` and `get_mean_value`."""
    rng = random.Random(n)
    h = new_histogram()
    for _ in range(n):
        record(h, rng.lognormvariate(-5, 2))
    s = summary(h)
    assert s["count"] == n
    if n == 0:
        assert s["p99_ms"] is None and s["mean_ms"] is None
        return
    for key, p in (("p50_ms", 50.0), ("p90_ms", 90.0), ("p99_ms", 99.0), ("p999_ms", 99.9)):
        assert s[key] == round(h.get_value_at_percentile(p) / 1000, 3)
    assert s["mean_ms"] == round(h.get_mean_value() / 1000, 3)


def _result(latencies: list[float], errors: dict[str, int] | None = None) -> dict:
    h = new_histogram()
    for v in latencies:
        record(h, v)
    errors = errors or {}
    return {"cars": 5, "apps": 1, "car_failures": {}, "app_failures": {}, "arrivals": len(latencies), "sent": len(latencies),
            "done": len(latencies), "run_s": 2.0, "latency": encode(h), "send_lag": encode(new_histogram()),
            "alerts": encode(new_histogram()), "commands": {"lock": encode(h)}, "outcomes": {"ok": len(latencies)},
            "errors": errors, "refused": {}, "alert_types": {}, "events": 0, "event_failures": 0,
            "timeline": [{"t": 1.0, "hist": encode(h), "errors": 0}], "cpu_s": 0.5, "cpu_total_s": 0.6}


def test_report_merges_workers_exactly() -> None:
    fast = [0.001 * (1 + i % 10) for i in range(990)]
    slow = [0.5 + 0.001 * i for i in range(10)]
    report = build_report([_result(fast), _result(slow, {"timeout": 2})], options={})
    one = new_histogram()
    for v in fast + slow:
        record(one, v)
    assert report["completed"] == 1000 and report["workers"] == 2 and report["cars"] == 10
    assert report["p99_ms"] == summary(one)["p99_ms"]  # not the mean of the workers' p99s
    assert report["p99_ms"] != (summary(merge([_result(fast)["latency"]]))["p99_ms"] + summary(merge([_result(slow)["latency"]]))["p99_ms"]) / 2
    assert report["errors"] == 2 and report["errors_by_code"] == {"timeout": 2}
    assert report["commands_per_s"] == 500.0
    assert report["timeline"][0]["count"] == 1000


@pytest.mark.parametrize(
    "text, holds",
    [("p99<100ms", True), ("p99<1ms", False), ("p99 < 0.1s", True), ("errors<0.1%", False), ("errors<1%", True),
     ("errors<3", True), ("errors<=1", False), ("commands_per_s>=500", True), ("throughput>600", False),
     ("alert_p99<1s", False)],  # no alerts measured: a threshold on nothing fails
)
def test_thresholds(text: str, holds: bool) -> None:
    report = build_report([_result([0.002] * 998 + [0.05] * 2, {"timeout": 2})], options={})
    report["run_s"] = 2.0
    t = parse_threshold(text)
    assert t.holds(report) is holds
    assert (check_thresholds(report, [t]) == []) is holds


@pytest.mark.parametrize("bad", ["p99", "p99<fast", "p99<3%", "errors<2ms", "latency<3ms"])
def test_bad_thresholds_say_what_is_accepted(bad: str) -> None:
    with pytest.raises(ValueError, match=r"p99|latency|percentage|unknown metric|not a latency"):
        parse_threshold(bad)


def test_example_profiles_load() -> None:
    assert load_profile(EXAMPLES / "default.toml") == DEFAULT_PROFILE
    checks = load_profile(EXAMPLES / "checks-only.toml")
    assert checks.commands == {"remote_check": 1.0} and checks.events_per_car_per_min == 0


def test_profile_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown command"):
        Profile(commands={"teleport": 1})
    path = tmp_path / "p.toml"
    path.write_text("rate = 3\n")
    with pytest.raises(ValueError, match="unknown profile key"):
        load_profile(path)


def test_csv_and_svg(tmp_path: Path) -> None:
    report = build_report([_result([0.002, 0.003, 0.004], {"offline": 1})], options={})
    write_csv(report, tmp_path / "r.csv")
    text = (tmp_path / "r.csv").read_text()
    assert text.splitlines()[0].startswith("name,count,per_s,p50_ms")
    assert "lock,3," in text and "offline,1" in text
    write_svg(report, tmp_path / "r.svg")
    svg = (tmp_path / "r.svg").read_text()
    assert svg.startswith("<svg") and "polyline" in svg
    json.dumps(report)


def test_open_files_limit_is_raised_or_the_run_refused() -> None:
    """Every car and app is a socket in the hub and in a worker: the soft limit is raised as far
    as the hard limit allows, and a fleet beyond it is refused up front, saying what to do."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert twin.load.open_files_limit(soft) == soft  # enough already: unchanged
    twin.load.check_open_files(100, 10, 1, embedded=True)
    if hard != resource.RLIM_INFINITY:
        with pytest.raises(ValueError, match=r"open files in the embedded hub.*ulimit -n"):
            twin.load.check_open_files(hard, 10, 1, embedded=True)
        with pytest.raises(ValueError, match="each worker.*more --workers"):
            twin.load.check_open_files(hard, 10, 1, embedded=False)
        twin.load.check_open_files(hard, 10, 10, embedded=False)  # spread over ten workers, it fits
