"""The garbage collector's settings for a long-running hub (and the processes of a load test).

Two parts. `tune_gc`, once the start-up heap is built, freezes it out of the collector's scans.
`pace_gc`, a task, then runs the collector on the clock instead of on allocation counts.

Why the clock: a hub under load replaces objects all the time (every command gives a twin a
new state, the old one is freed). Python counts allocations minus deallocations, so those
frees of old objects hold the count down while the young generation keeps growing; by the
time a collection runs it scans hundreds of thousands of young objects. Measured in the hub of
`twin load --cars 5000 --apps 200 --rate 1000` (with `gc.callbacks`): ten young-generation
collections in 30 s of 50-250 ms each, every one a stop of all traffic. Collected every 0.1 s,
the young generation is what 0.1 s allocated, and a pause lasts a few milliseconds.
"""

from __future__ import annotations

import gc
import sys

import trio

__all__ = ["FULL_GROWTH", "GC_PERIOD_S", "pace_gc", "tune_gc"]

#: How often `pace_gc` collects the young generation, and by how much the frozen heap grows
#: before it collects everything.
GC_PERIOD_S, FULL_GROWTH = 0.1, 0.25


def tune_gc() -> None:
    """Once the twins are loaded (and again after a burst of connections): collect everything,
    then move what is left out of the cyclic collector's scans (`gc.freeze`) and collect less
    often. A hub holds millions of long-lived objects; without this, full collections cost
    about a fifth of its CPU under load and show up as latency spikes."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    _heap_at_full[0] = sys.getallocatedblocks()


#: Blocks of Python's allocator in use after the last full collection (`tune_gc`, `pace_gc`).
_heap_at_full = [0]


async def pace_gc(
    period: float = GC_PERIOD_S,
    *,
    full_growth: float | None = FULL_GROWTH,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the cyclic collector on the clock instead of on allocation counts, until cancelled
    (the automatic collector is off meanwhile; `nursery.start(pace_gc)` returns once it is).

    Every `period` seconds: collect the young generation and freeze what survives it (it is
    almost always live data: twin states, connections), so no collection scans more than what
    one period allocated. Once the heap has grown by `full_growth` (a quarter, in blocks of
    Python's allocator: a count that costs nothing, where counting the frozen objects walks all
    of them, 120 ms in a loaded hub) since the last full collection (this one's or
    `tune_gc`'s), unfreeze everything and collect it all, so cyclic garbage that outlived a
    period is freed then. That pause grows with the heap (0.6-0.9 s with 5,000 cars and 5,200
    connections), so it waits for growth as Python's own rule for its oldest generation does,
    not for a clock: a hub in a steady state, whose objects die by reference counting, rarely
    needs one. `full_growth=None` never does (a load generator: a short run).
    """
    gc.disable()
    if not _heap_at_full[0]:
        _heap_at_full[0] = sys.getallocatedblocks()
    task_status.started()
    try:
        while True:
            await trio.sleep(period)
            gc.collect(0)
            gc.freeze()
            if full_growth is not None and sys.getallocatedblocks() > _heap_at_full[0] * (1 + full_growth):
                gc.unfreeze()
                tune_gc()
    finally:
        gc.enable()
