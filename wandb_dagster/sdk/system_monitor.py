"""System metrics: a background thread samples the machine and the process while a run goes on, into the
run's system metrics stream (W&B's ``events``, read by ``Api().run(...).history(stream="system")``).

Rows are as W&B's: ``_wandb: True``, ``_timestamp``, ``_runtime`` and ``system.<name>`` values with W&B's
names: ``system.cpu`` (this process's CPU %, over every core, as W&B's), ``system.proc.cpu.threads``,
``system.memory_percent`` (the machine's), ``system.proc.memory.rssMB``, ``system.proc.memory.percent``,
``system.proc.memory.availableMB``, ``system.disk.<path>.usagePercent`` / ``usageGB`` (``x_stats_disk_paths``,
default ``/``), ``system.network.sent`` / ``recv`` (bytes since the run started), and per GPU
``system.gpu.<i>.gpu`` / ``memory`` / ``memoryAllocated`` / ``temp`` / ``powerWatts`` when ``nvidia-smi`` is
on the PATH. W&B's charts show them as ``system/...``.

psutil is used when it is installed (it is not a dependency); without it, the standard library and
Linux's ``/proc`` give the same metrics (elsewhere, those of ``/proc`` are left out). Switched off by W&B's
``x_disable_stats`` (``WANDB_X_DISABLE_STATS`` / ``WANDB__DISABLE_STATS``); the interval is
``x_stats_sampling_interval`` (default 15 s).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

try:  # optional: a richer and portable source of the same numbers
    import psutil as _psutil
except ImportError:  # pragma: no cover - depends on the installation
    _psutil = None

_MB = 1024 * 1024
_GB = 1024 * _MB
_GPU_QUERY = "utilization.gpu,utilization.memory,memory.used,memory.total,temperature.gpu,power.draw"


def _meminfo() -> dict[str, int]:
    out = {}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                key, _, rest = line.partition(":")
                out[key] = int(rest.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return out


def _proc_status(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    value = int(line.split()[1])
                    return value * 1024 if line.rstrip().endswith("kB") else value
    except (OSError, ValueError, IndexError):
        pass
    return None


class SystemSampler:
    """One sample of W&B's system metrics at a time (:meth:`sample`); CPU % is over the time since the
    previous sample."""

    def __init__(self, disk_paths: Sequence[str] = ("/",)) -> None:
        self._disk_paths = list(disk_paths)
        self._cpus = os.cpu_count() or 1
        self._last_wall = time.monotonic()
        self._last_cpu = self._process_cpu_seconds()
        self._process = _psutil.Process() if _psutil is not None else None
        self._net_start = self._net_counters()
        self._nvidia_smi = shutil.which("nvidia-smi")

    @staticmethod
    def _process_cpu_seconds() -> float:
        times = os.times()
        return times.user + times.system

    @staticmethod
    def _net_counters() -> tuple[int, int] | None:
        """(bytes sent, bytes received) over every interface but loopback, as W&B counts them."""
        if _psutil is not None:
            try:
                counters = _psutil.net_io_counters()
            except Exception:
                return None
            return (counters.bytes_sent, counters.bytes_recv) if counters is not None else None
        try:
            with open("/proc/net/dev") as f:
                lines = f.readlines()[2:]
        except OSError:
            return None
        sent = received = 0
        for line in lines:
            name, _, rest = line.partition(":")
            fields = rest.split()
            if name.strip() == "lo" or len(fields) < 9:
                continue
            received += int(fields[0])
            sent += int(fields[8])
        return sent, received

    def sample(self) -> dict[str, float]:
        metrics: dict[str, float] = {}
        now, cpu = time.monotonic(), self._process_cpu_seconds()
        elapsed = now - self._last_wall
        if elapsed > 0:
            metrics["cpu"] = max(0.0, (cpu - self._last_cpu) / elapsed * 100 / self._cpus)
        self._last_wall, self._last_cpu = now, cpu
        self._memory(metrics)
        for path in self._disk_paths:
            try:
                usage = shutil.disk_usage(path)
            except OSError:
                continue  # a path that is not mounted (any more) has no usage to report
            metrics[f"disk.{path}.usagePercent"] = usage.used / usage.total * 100 if usage.total else 0.0
            metrics[f"disk.{path}.usageGB"] = usage.used / _GB
        net = self._net_counters()
        if net is not None and self._net_start is not None:
            metrics["network.sent"] = float(net[0] - self._net_start[0])
            metrics["network.recv"] = float(net[1] - self._net_start[1])
        if self._nvidia_smi is not None:
            metrics.update(self._gpus())
        return metrics

    def _memory(self, metrics: dict[str, float]) -> None:
        if self._process is not None and _psutil is not None:
            virtual = _psutil.virtual_memory()
            total, available, percent = virtual.total, virtual.available, virtual.percent
            rss = self._process.memory_info().rss
            metrics["proc.cpu.threads"] = float(self._process.num_threads())
        else:
            info = _meminfo()
            total, available = info.get("MemTotal", 0), info.get("MemAvailable", 0)
            percent = (total - available) / total * 100 if total else 0.0
            rss = _proc_status("VmRSS") or 0
            threads = _proc_status("Threads")
            if threads is not None:
                metrics["proc.cpu.threads"] = float(threads)
        if total:
            metrics["memory_percent"] = float(percent)
            metrics["proc.memory.availableMB"] = available / _MB
            metrics["proc.memory.percent"] = rss / total * 100
        if rss:
            metrics["proc.memory.rssMB"] = rss / _MB

    def _gpus(self) -> dict[str, float]:
        assert self._nvidia_smi is not None
        try:
            result = subprocess.run(
                [self._nvidia_smi, f"--query-gpu={_GPU_QUERY}", "--format=csv,noheader,nounits"],
                capture_output=True, text=True, timeout=5, check=True,
            )  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            self._nvidia_smi = None  # no driver, or it hangs: stop asking for this run
            return {}
        out: dict[str, float] = {}
        for index, line in enumerate(result.stdout.strip().splitlines()):
            fields = [f.strip() for f in line.split(",")]
            if len(fields) != 6:
                continue
            names = ("gpu", "memory", None, None, "temp", "powerWatts")
            for name, raw in zip(names, fields, strict=True):
                value = _number(raw)
                if name is not None and value is not None:
                    out[f"gpu.{index}.{name}"] = value
            used, total = _number(fields[2]), _number(fields[3])
            if used is not None and total:
                out[f"gpu.{index}.memoryAllocated"] = used / total * 100
        return out


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None  # "[N/A]" for a value the card does not report


class SystemMonitor:
    """Samples every ``interval`` seconds in a daemon thread and hands each row to ``write``; :meth:`stop`
    ends it (a sample in progress completes first)."""

    def __init__(
        self,
        write: Callable[[list[dict[str, Any]]], None],
        start_time: float,
        interval: float,
        disk_paths: Sequence[str] = ("/",),
    ) -> None:
        self._write = write
        self._start_time = start_time
        self._interval = interval
        self._sampler = SystemSampler(disk_paths)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wandb-dagster-system-monitor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            now = time.time()
            try:
                row: dict[str, Any] = {"_wandb": True, "_timestamp": now, "_runtime": now - self._start_time}
                row.update({f"system.{k}": v for k, v in self._sampler.sample().items()})
                self._write([row])
            except Exception as exc:  # a sample that cannot be taken or written is skipped, never fatal
                warnings.warn(f"system metrics sample skipped ({exc})", RuntimeWarning, stacklevel=1)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
