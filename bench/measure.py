"""Run a command and measure its whole process tree: wall time, CPU time, peak RSS.

CPU time is user + system time of every process in the tree, threads included: the bench makes
itself a child subreaper (prctl PR_SET_CHILD_SUBREAPER), so a descendant orphaned by its parent
(a forkserver, a pool worker) is reparented to the bench and reaped by it, and the kernel's
accounting for reaped children (`getrusage(RUSAGE_CHILDREN)`) then covers the whole tree.
Peak RSS is the larger of the kernel's `ru_maxrss` (the largest single process) and the peak of
the tree's summed RSS, sampled from /proc every `SAMPLE_S` seconds; a tree that lives shorter
than one sample still gets `ru_maxrss`.

Every child is started in its own session so that Ctrl-C reaches only the bench, which then
stops the children itself (`ProcessGroup`), never a process it did not start.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

SAMPLE_S = 0.05
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
PR_SET_CHILD_SUBREAPER = 36
ORPHAN_WAIT_S = 15.0


def become_subreaper() -> bool:
    """Adopt orphaned descendants (Linux ≥ 3.4), so their CPU time is counted too."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


@dataclass(slots=True)
class Usage:
    """What one measured command cost."""

    wall_s: float
    user_s: float
    sys_s: float
    peak_rss_mb: float
    returncode: int | None
    timed_out: bool = False
    samples: list[tuple[float, float]] = field(default_factory=list)  # (t, tree RSS MB)

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s

    def as_dict(self) -> dict[str, Any]:
        return {
            "wall_s": round(self.wall_s, 3),
            "cpu_s": round(self.cpu_s, 3),
            "user_s": round(self.user_s, 3),
            "sys_s": round(self.sys_s, 3),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "returncode": self.returncode,
            "timed_out": self.timed_out,
        }


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tasks:
        try:
            text = Path(f"/proc/{pid}/task/{tid}/children").read_text()
        except OSError:
            continue
        found.extend(int(child) for child in text.split())
    return found


def tree_pids(root: int) -> list[int]:
    """`root` and all its descendants (bounded: a tree of more than 10,000 is cut off)."""
    pids, stack = [], [root]
    while stack and len(pids) < 10_000:
        pid = stack.pop()
        pids.append(pid)
        stack.extend(_children(pid))
    return pids


def rss_mb(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/statm").read_text().split()
    except OSError:
        return 0.0
    return int(fields[1]) * PAGE_KB / 1024


def tree_rss_mb(root: int) -> float:
    return sum(rss_mb(pid) for pid in tree_pids(root))


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a live process so far (its own threads, not its children)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


class TreeSampler:
    """Samples the summed RSS of a process tree in a thread until stopped."""

    def __init__(
        self,
        root: int,
        *,
        interval_s: float = SAMPLE_S,
        keep: bool = False,
        on_sample: Callable[[float, float], None] | None = None,
    ) -> None:
        self.root = root
        self.interval_s = interval_s
        self.keep = keep
        self.on_sample = on_sample
        self.peak_mb = 0.0
        self.seen: set[int] = set()
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = time.monotonic()

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic() - self._started
            pids = tree_pids(self.root)
            self.seen.update(pids)
            mb = sum(rss_mb(pid) for pid in pids)
            self.peak_mb = max(self.peak_mb, mb)
            if self.keep and mb:
                self.samples.append((now, mb))
            if self.on_sample is not None and mb:
                self.on_sample(now, mb)
            self._stop.wait(self.interval_s)


class ProcessGroup:
    """Every process the bench starts, so that all of them are stopped at the end."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen[Any]] = []

    def start(self, cmd: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        process = subprocess.Popen(list(cmd), start_new_session=True, **kwargs)
        self.processes.append(process)
        return process

    def stop(self, process: subprocess.Popen[Any], *, grace_s: float = 10.0) -> None:
        """SIGTERM the process's session, wait up to `grace_s`, then SIGKILL it."""
        if process.returncode is None and process.poll() is None:
            _signal_session(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                _signal_session(process.pid, signal.SIGKILL)
                process.wait(timeout=grace_s)
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                stream.close()

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                self.stop(process)
        self.processes.clear()


def _signal_session(pid: int, signum: int) -> None:
    """Signal the session the bench created for `pid` (its group id is its pid)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signum)


def reap_orphans(pids: set[int], deadline: float) -> None:
    """Wait for descendants that outlived the root (reparented to us as subreaper)."""
    pending = set(pids)
    while pending and time.monotonic() < deadline:
        for pid in list(pending):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:  # not ours (yet): gone, or its parent will reap it
                if not Path(f"/proc/{pid}").exists():
                    pending.discard(pid)
                continue
            if done:
                pending.discard(pid)
        time.sleep(0.02)


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def reap(process: subprocess.Popen[Any], deadline: float) -> tuple[int | None, Any, bool]:
    """Wait for `process` with wait4() until `deadline` (monotonic); kill it past that.
    Returns (returncode, rusage, timed_out)."""
    timed_out = False
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return process.returncode, usage, timed_out
        if time.monotonic() > deadline and not timed_out:
            timed_out = True
            _signal_session(process.pid, signal.SIGKILL)
        time.sleep(0.01)


def run_measured(
    group: ProcessGroup,
    cmd: Sequence[str],
    *,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdout: IO[Any] | int = subprocess.DEVNULL,
    stderr: IO[Any] | int = subprocess.DEVNULL,
) -> Usage:
    """Run `cmd` to completion (killing it after `timeout_s`) and return what it cost."""
    subreaper = become_subreaper()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = group.start(
        cmd, env=dict(env) if env else None, cwd=cwd, stdin=subprocess.DEVNULL,
        stdout=stdout, stderr=stderr,
    )  # fmt: skip
    with TreeSampler(process.pid) as sampler:
        returncode, usage, timed_out = reap(process, time.monotonic() + timeout_s)
    wall = time.perf_counter() - started
    group.processes.remove(process)
    user, system = usage.ru_utime, usage.ru_stime
    if subreaper:
        reap_orphans(sampler.seen - {process.pid}, time.monotonic() + ORPHAN_WAIT_S)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        user = max(user, after.ru_utime - before.ru_utime)
        system = max(system, after.ru_stime - before.ru_stime)
    peak = max(sampler.peak_mb, usage.ru_maxrss / 1024)
    return Usage(wall, user, system, peak, returncode, timed_out)
