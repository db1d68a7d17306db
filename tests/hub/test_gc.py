"""The garbage collector on the clock (`twin.server.pace_gc`), under trio's MockClock.

What is checked: cyclic garbage is freed by the next tick although the automatic collector is
off; what survives a tick is frozen; garbage that outlived a tick waits for a full collection,
which comes once the heap has grown by `full_growth` and never with `full_growth=None`; the
automatic collector is back on once the task is cancelled.
"""

from __future__ import annotations

import gc
import sys
import weakref
from collections.abc import Iterator
from functools import partial

import pytest
import trio
import trio.testing

from twin.server import GC_PERIOD_S, pace_gc, tune_gc


class _Node:
    """An object that can be part of a reference cycle, and be watched by a weak reference."""

    def __init__(self) -> None:
        self.other: object = None


def _cycle() -> weakref.ref[_Node]:
    """A two-object cycle nobody refers to: only the cyclic collector can free it."""
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return weakref.ref(a)


@pytest.fixture(autouse=True)
def _restore_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)
    gc.enable()
    gc.collect()


def _grow_heap() -> list[bytes]:
    """More new objects than a third of the heap (in blocks of Python's allocator)."""
    return [bytes(8) for _ in range(sys.getallocatedblocks() // 3)]


async def _tick() -> None:
    await trio.sleep(GC_PERIOD_S * 1.5)


async def test_a_tick_frees_young_cyclic_garbage_and_freezes_what_lives(autojump_clock: trio.testing.MockClock) -> None:
    tune_gc()
    async with trio.open_nursery() as nursery:
        await nursery.start(pace_gc)
        assert not gc.isenabled()
        frozen = gc.get_freeze_count()
        garbage = _cycle()
        live = [_Node() for _ in range(1000)]
        await _tick()
        assert garbage() is None
        assert gc.get_freeze_count() >= frozen + len(live)
        nursery.cancel_scope.cancel()
    assert gc.isenabled()


async def test_garbage_older_than_a_tick_waits_for_the_heap_to_grow(autojump_clock: trio.testing.MockClock) -> None:
    tune_gc()
    async with trio.open_nursery() as nursery:
        await nursery.start(pace_gc)
        holder = [_Node()]
        holder[0].other = holder[0]  # a cycle, alive while `holder` holds it
        watched = weakref.ref(holder[0])
        await _tick()  # frozen
        holder.clear()  # garbage now, but frozen: no young collection sees it
        await _tick()
        assert watched() is not None
        growth = _grow_heap()
        await _tick()
        assert watched() is None
        del growth
        nursery.cancel_scope.cancel()


async def test_without_full_growth_frozen_garbage_stays(autojump_clock: trio.testing.MockClock) -> None:
    tune_gc()
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(pace_gc, full_growth=None))
        holder = [_Node()]
        holder[0].other = holder[0]
        watched = weakref.ref(holder[0])
        await _tick()
        holder.clear()
        growth = _grow_heap()
        await _tick()
        await _tick()
        assert watched() is not None
        del growth
        nursery.cancel_scope.cancel()
