"""The garbage collector's settings for a long-running hub (and the processes of a load test)."""

from __future__ import annotations

import gc

__all__ = ["tune_gc"]


def tune_gc() -> None:
    """Once the twins are loaded: move them out of the cyclic collector's scans (`gc.freeze`)
    and collect less often. A hub holds millions of long-lived objects; without this, full
    collections cost about a fifth of its CPU under load and show up as latency spikes."""
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
