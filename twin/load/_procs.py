"""Process helpers shared by `twin load` and `bench/hub.py`: CPU and memory of a pid (from
/proc), the garbage-collector tuning every load process applies, the open-files limit, and
line-based child processes (the child says a word on stdout when ready, the parent closes
stdin to stop it)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time

__all__ = ["cpu_s", "open_files_limit", "rss_kb", "stop", "wait_for"]


def rss_kb(pid: int) -> int:
    """Resident memory of `pid` in KB (0 if /proc says nothing)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_s(pid: int) -> float:
    """User + system CPU seconds used so far by `pid`."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_files_limit(needed: int) -> int:
    """Raise this process's soft limit of open files (RLIMIT_NOFILE) to `needed`, as far as the
    hard limit allows, and return the soft limit in force; child processes inherit it.

    Every websocket is a file descriptor, in the hub and in the generator. Many systems start
    processes with a soft limit of 1024 under a much higher hard limit; left there, a hub
    loaded with a few thousand cars fails to accept (EMFILE) and the ramp never completes."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return needed if soft == resource.RLIM_INFINITY else soft
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def wait_for(proc: subprocess.Popen[str], word: str, timeout: float = 600) -> str:
    """Read `proc`'s stdout until a line starting with `word`; return that line."""
    assert proc.stdout is not None
    end = time.time() + timeout
    while time.time() < end:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"a load process (pid {proc.pid}) exited before saying {word}")
        if line.startswith(word):
            return line.strip()
    raise TimeoutError(word)


def stop(*procs: subprocess.Popen[str], timeout: float = 30, close_pipes: bool = True) -> None:
    """Close each process's stdin (its signal to stop), wait, kill the ones that linger; then
    close their stdout (not with `close_pipes=False`, when a thread may still be reading it)."""
    for proc in procs:
        if proc.stdin is not None:
            with contextlib.suppress(OSError, ValueError):  # already closed, or a broken pipe
                proc.stdin.close()
    for proc in procs:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if close_pipes and proc.stdout is not None:
            proc.stdout.close()
