"""Settings shared by every test folder.

Hypothesis: no per-example deadline. Tests assert behaviour, not speed, and on a loaded
2-core CI machine the first example (which builds cattrs hooks) can take longer than the
default 200 ms, which made an otherwise correct property fail as "flaky". Speed is measured
by `bench/`, not here.
"""

from hypothesis import settings

settings.register_profile("twin", deadline=None)
settings.load_profile("twin")
