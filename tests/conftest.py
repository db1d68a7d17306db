"""Settings shared by every test folder.

Hypothesis: no per-example deadline. Tests assert behaviour, not speed, and on a loaded
2-core CI machine the first example (which builds cattrs hooks) can take longer than the
default 200 ms, which made an otherwise correct property fail as "flaky". Speed is measured
by `bench/`, not here.

`until_listening`: for tests that run `twin serve` as a real process.
"""

import subprocess
from collections.abc import Awaitable, Callable

import pytest
import trio
from hypothesis import settings

settings.register_profile("twin", deadline=None)
settings.load_profile("twin")


@pytest.fixture
def until_listening() -> Callable[[subprocess.Popen[str]], Awaitable[list[str]]]:
    """`await until_listening(proc)`: the lines a `twin serve` process printed up to its
    "listening on ws://..." line (its fleet is provisioned by then); fails if it exits first."""

    async def wait(proc: subprocess.Popen[str]) -> list[str]:
        assert proc.stdout is not None
        lines: list[str] = []
        while not lines or "listening on" not in lines[-1]:
            line = await trio.to_thread.run_sync(proc.stdout.readline, abandon_on_cancel=True)
            if not line:
                raise AssertionError("twin serve exited early:\n" + "".join(lines))
            lines.append(line)
        return lines

    return wait
