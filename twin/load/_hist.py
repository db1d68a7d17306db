"""Latency histograms: HdrHistogram in microseconds, 1 µs to 10 minutes, 3 significant digits.

Workers ship histograms as their compressed encoding (`encode`); the conductor adds the decoded
ones (`merge`), so the merged percentiles are those of one histogram of every sample, never
averages of percentiles.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

__all__ = ["Histogram", "encode", "merge", "new_histogram", "summary"]

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
    """count, p50/p90/p99/p99.9, max and mean in milliseconds (None when empty)."""
    n = h.get_total_count()
    out: dict[str, Any] = {"count": n}
    for name, p in PERCENTILES:
        out[name] = round(h.get_value_at_percentile(p) / 1000, 3) if n else None
    out["max_ms"] = round(h.get_max_value() / 1000, 3) if n else None
    out["mean_ms"] = round(h.get_mean_value() / 1000, 3) if n else None
    return out
