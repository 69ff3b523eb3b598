"""Run a command and measure its whole process tree honestly: CPU time and peak memory, workers included.

``measure(cmd)`` starts ``cmd`` from this process after making this process a *child subreaper*
(``prctl(PR_SET_CHILD_SUBREAPER)``), so every process the command starts, however deep (a forkserver and
its pool workers, datasets' map workers), stays in this process's tree even when its own parent exits
first. While the command runs, every ``interval`` seconds it reads ``/proc`` for every descendant:

- memory: the sum over live descendants of RSS and of PSS (``/proc/PID/smaps_rollup``: shared pages
  divided among the processes that share them, so a sum of PSS never counts a page twice); the peak of
  each sum is reported;
- CPU: per process user + system time, the last value seen; the sum over every process ever seen is a
  time series that places CPU time in the stages of a run (a process's last < ``interval`` seconds may be
  missed).

When the command has ended, every remaining descendant is reaped (and, after ``reap_timeout`` seconds,
killed by its process id: only processes this command started), and ``getrusage(RUSAGE_CHILDREN)``
gives the exact CPU time of the whole tree and the largest resident set any single process of it had
(``ru_maxrss``). Call ``measure`` in a fresh process per run (``RUSAGE_CHILDREN`` only grows).
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import subprocess
import time
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def become_subreaper() -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _stat(pid: int) -> tuple[int, float, int] | None:
    """(parent pid, user + system seconds, RSS bytes) of ``pid``, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    # fields[0] is the state (field 3 of proc(5)); ppid is field 4, utime 14, stime 15, rss 24
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK, int(fields[21]) * PAGE


def _pss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def descendants(root: int) -> dict[int, tuple[int, float, int]]:
    """Every live descendant of ``root`` (not ``root`` itself) with its _stat."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None:
                table[int(entry)] = st
    children: dict[int, list[int]] = {}
    for pid, st in table.items():
        children.setdefault(st[0], []).append(pid)
    out, todo = {}, list(children.get(root, []))
    while todo:
        pid = todo.pop()
        out[pid] = table[pid]
        todo += children.get(pid, [])
    return out


def measure(cmd: list[str], env: dict | None = None, interval: float = 0.2, reap_timeout: float = 30.0,
            stdout=None, stderr=None) -> dict:
    """Run ``cmd`` to its end; return its exit status, wall time, CPU and memory (see the module doc)."""
    subreaper = become_subreaper()
    me = os.getpid()
    cpu_seen: dict[int, float] = {}  # pid -> last CPU seconds seen
    series = []
    peak_rss = peak_pss = 0
    started = time.time()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=stdout, stderr=stderr)
    while True:
        done = proc.poll() is not None
        tree = descendants(me)
        rss = sum(st[2] for st in tree.values())
        pss = sum(_pss(pid) for pid in tree)
        for pid, st in tree.items():
            cpu_seen[pid] = st[1]
        peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
        series.append((time.time(), sum(cpu_seen.values()), pss, rss, len(tree)))
        if done:
            break
        time.sleep(interval)
    wall = time.perf_counter() - t0
    # Reap what is left (orphans re-parented to us); kill, by pid, what has not ended in time.
    deadline = time.time() + reap_timeout
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid:
            continue
        if time.time() > deadline:
            for left in descendants(me):
                try:
                    os.kill(left, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            deadline = time.time() + 5
        time.sleep(0.05)
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"returncode": proc.returncode, "started": started, "wall_s": wall,
            "cpu_s": ru.ru_utime + ru.ru_stime, "cpu_user_s": ru.ru_utime, "cpu_sys_s": ru.ru_stime,
            "cpu_sampled_s": series[-1][1] if series else 0.0,
            "peak_tree_pss_mb": peak_pss / 1e6, "peak_tree_rss_mb": peak_rss / 1e6,
            "max_process_rss_mb": ru.ru_maxrss * 1024 / 1e6, "subreaper": subreaper,
            "series": series}


def cpu_at(series: list, when: float) -> float:
    """Tree CPU seconds at wall time ``when``, linearly interpolated in a ``measure`` series."""
    if not series:
        return 0.0
    if when <= series[0][0]:
        return series[0][1]
    for (t1, c1, *_), (t2, c2, *_) in zip(series, series[1:]):
        if t1 <= when <= t2:
            return c1 + (c2 - c1) * (when - t1) / max(t2 - t1, 1e-9)
    return series[-1][1]
