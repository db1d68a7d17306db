"""Model bugs the properties found, kept as minimal regression examples (see `_known_bugs.py`).

Both were fixed in `climate.fit_run`: a plan change (or a sign-up) clamps the minutes used to
the new cap and stops a run in progress where the cap ran out, not at the time of the change.
"""

from __future__ import annotations

from . import _known_bugs as bugs


def test_a_downgrade_to_lite_keeps_used_climate_time_within_the_lite_cap() -> None:
    assert not bugs.downgrade_leaves_used_time_above_the_cap()


def test_a_downgrade_to_lite_mid_run_counts_no_time_past_the_lite_cap() -> None:
    assert not bugs.downgrade_mid_run_counts_time_past_the_cap()
