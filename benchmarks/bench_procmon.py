"""Run a child process and measure it: wall time, CPU time, peak resident memory, machine load.

Peak memory comes from two places: the kernel's high-water mark of the child (``wait4``'s
``ru_maxrss``, exact, the largest single process) and a psutil poll every ``interval`` seconds
of the RSS summed over the child and all its descendants (catches worker processes; may miss a
spike shorter than the poll interval).  Forked workers share their parent's pages until they write
them, and each one's RSS counts every shared page it has read, so the RSS sum counts shared memory
once per process; the proportional set size (PSS: a shared page split among its sharers), summed
over the tree and polled every ``pss_interval`` seconds (reading it walks the page tables), counts
it once.  The machine's CPU use over the same interval tells how
much of the two cores other processes took (the figures are noisy when that is high).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil


@dataclass
class ProcResult:
    exit_code: int
    wall_seconds: float
    cpu_seconds: float  # user + system of the child and its waited-for descendants
    peak_rss_mb: float  # kernel high-water mark (largest single process)
    peak_rss_tree_mb: float  # polled sum over the process tree
    peak_pss_tree_mb: float  # polled PSS sum over the process tree (shared pages counted once)
    machine_cpu_pct: float  # all cores, all processes, over the run (100 = every core busy)
    own_cpu_pct: float  # the child's CPU as a share of the machine (cpu_seconds / wall / cores)
    loadavg_start: tuple[float, float, float]
    loadavg_end: tuple[float, float, float]
    timed_out: bool = False

    def to_dict(self) -> dict:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}


class Sampler:
    """Calls :meth:`sample` every ``interval`` seconds on a daemon thread while a ``with`` block runs
    (the load average of a long run, the RSS of an in-process fit)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _tree_memory(proc: psutil.Process, pss: bool = False) -> int:
    """RSS (or PSS) summed over ``proc`` and its descendants, in bytes."""
    total = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    for p in procs:
        try:
            total += p.memory_full_info().pss if pss else p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_measured(cmd: list[str], *, env: dict[str, str], cwd: Path, log_path: Path, timeout: float,
                 interval: float = 0.1, pss_interval: float = 1.0) -> ProcResult:
    """Run ``cmd`` to completion (or ``timeout`` seconds, then kill its process group)."""
    cores = os.cpu_count() or 1
    load_start = os.getloadavg()
    psutil.cpu_percent(None)  # start the machine-wide interval
    started = time.perf_counter()
    with open(log_path, "wb") as log:
        child = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        proc = psutil.Process(child.pid)
        peak_tree = peak_pss = 0
        next_pss = 0.0
        timed_out = False
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            tree = _tree_memory(proc)
            peak_tree = max(peak_tree, tree)
            # A process's PSS is at most its RSS, so a tree whose RSS sum is under the PSS peak cannot
            # raise it; reading PSS walks the tree's page tables (tens of ms for a process of a few GB,
            # holding the lock the process needs to map or unmap memory), so it is read only when it could.
            if tree > peak_pss and time.perf_counter() >= next_pss:
                peak_pss = max(peak_pss, _tree_memory(proc, pss=True))
                next_pss = time.perf_counter() + pss_interval
            if time.perf_counter() - started > timeout:
                timed_out = True
                os.killpg(child.pid, signal.SIGTERM)  # our own child's group only
                try:
                    _, status, usage = os.wait4(child.pid, 0) if _wait_briefly(child.pid, 10) else (0, 0, None)
                except ChildProcessError:
                    usage = None
                if usage is None:
                    os.killpg(child.pid, signal.SIGKILL)
                    _, status, usage = os.wait4(child.pid, 0)
                break
            time.sleep(interval)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4: tell Popen
    machine = psutil.cpu_percent(None)
    cpu = usage.ru_utime + usage.ru_stime
    return ProcResult(
        exit_code=child.returncode,
        wall_seconds=wall,
        cpu_seconds=cpu,
        peak_rss_mb=usage.ru_maxrss / 1024,  # Linux: kilobytes
        peak_rss_tree_mb=max(peak_tree / 2**20, usage.ru_maxrss / 1024),
        peak_pss_tree_mb=peak_pss / 2**20,
        machine_cpu_pct=machine,
        own_cpu_pct=100.0 * cpu / max(wall, 1e-9) / cores,
        loadavg_start=tuple(round(x, 2) for x in load_start),
        loadavg_end=tuple(round(x, 2) for x in os.getloadavg()),
        timed_out=timed_out,
    )


def _wait_briefly(pid: int, seconds: float) -> bool:
    """True once ``pid`` has exited (without reaping it), within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


def java_pid(port: int) -> int | None:
    """The process listening on ``port`` (DynamoDB Local's JVM), to count its CPU separately."""
    for conn in psutil.net_connections("tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
            return conn.pid
    return None


def cpu(pid: int | None) -> float:
    """User + system CPU seconds of ``pid`` so far (NaN when unknown)."""
    if pid is None:
        return float("nan")
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system
