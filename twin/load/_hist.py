"""Latency histograms: HdrHistogram in microseconds, 1 µs to 10 minutes, 3 significant digits.

Workers ship histograms as their compressed encoding (`encode`); the conductor adds the decoded
ones (`merge`), so the merged percentiles are those of one histogram of every sample, never
averages of percentiles.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

__all__ = ["Histogram", "encode", "mean_us", "merge", "new_histogram", "summary"]

Histogram = HdrHistogram
LOWEST_US = 1
HIGHEST_US = 600_000_000
DIGITS = 3


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)


def record(h: HdrHistogram, seconds: float) -> None:
    """Record a latency given in seconds (clamped into the trackable range)."""
    h.record_value(min(HIGHEST_US, max(LOWEST_US, round(seconds * 1e6))))


def encode(h: HdrHistogram) -> str:
    return h.encode().decode("ascii")  # type: ignore[no-any-return]


def merge(encoded: Iterable[str | bytes | HdrHistogram]) -> HdrHistogram:
    """One histogram holding every sample of the given (encoded) histograms."""
    out = new_histogram()
    for item in encoded:
        if isinstance(item, HdrHistogram):
            out.add(item)
        elif item:
            out.add(HdrHistogram.decode(item.encode("ascii") if isinstance(item, str) else item))
    return out


PERCENTILES = (("p50_ms", 50.0), ("p90_ms", 90.0), ("p99_ms", 99.0), ("p999_ms", 99.9))


def summary(h: HdrHistogram) -> dict[str, Any]:
    """count, p50/p90/p99/p99.9, max and mean in milliseconds (None when empty).

    The percentiles come from one pass over the counts, the mean from `mean_us`: hdrh's own
    `get_value_at_percentile` (one pass each) and `get_mean_value` (a Python iterator object
    per recorded value) made the final report cost about half a second of the conductor's
    CPU, while the workers were closing their links on the same cores."""
    n = h.get_total_count()
    out: dict[str, Any] = {"count": n}
    values = h.get_percentile_to_value_dict([p for _, p in PERCENTILES]) if n else {}
    for name, p in PERCENTILES:
        out[name] = round(values[p] / 1000, 3) if n else None
    out["max_ms"] = round(h.get_max_value() / 1000, 3) if n else None
    out["mean_ms"] = round(mean_us(h) / 1000, 3) if n else None
    return out


def mean_us(h: HdrHistogram) -> float:
    """`h.get_mean_value()`, the same number (each count at the middle of its bucket), from a
    plain loop over the counts array: several times faster."""
    total = 0
    for index, count in enumerate(h.counts):
        if count:
            value = h.get_value_from_index(index)
            low = h.get_lowest_equivalent_value(value)
            total += count * (low + ((h.get_highest_equivalent_value(value) - low + 1) >> 1))
    return total / h.get_total_count() if total else 0.0
