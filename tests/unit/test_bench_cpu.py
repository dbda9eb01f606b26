"""bench/ingest.py's CPU accounting: each thread's CPU time lands in its group, per event."""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
import time
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_ingest", ROOT / "bench" / "ingest.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_ingest", module)
    spec.loader.exec_module(module)
    return module


def _spin(seconds: float, spun: threading.Event, leave: threading.Event) -> None:
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass
    spun.set()
    leave.wait()


def test_a_busy_python_thread_is_counted_as_python_threads_per_event() -> None:
    bench = _bench()
    spun, leave = threading.Event(), threading.Event()
    worker = threading.Thread(target=_spin, args=(0.3, spun, leave))
    before = bench.thread_cpu(os.getpid())
    worker.start()
    spun.wait()
    after = bench.thread_cpu(os.getpid())
    leave.set()
    worker.join()
    figures = bench.cpu_per_event(before, after, events=1000, seconds=1.0)
    by_thread = figures["cpu_us_per_event_by_thread"]
    # 0.3 s of one thread's CPU over 1,000 events: 300 µs each (clock ticks are 10 ms).
    assert 250 <= by_thread["python threads"] <= 450, by_thread
    assert figures["cpu_us_per_event"] >= by_thread["python threads"]
    assert figures["cores_by_thread"]["python threads"] >= 0.25


def test_cpu_per_event_by_process_sums_each_process() -> None:
    bench = _bench()
    before = {(1, 1): ("web", 1.0), (1, 2): ("web", 0.5), (2, 2): ("worker", 2.0)}
    after = {(1, 1): ("web", 1.2), (1, 2): ("web", 0.6), (2, 2): ("worker", 2.1), (2, 3): ("worker", 0.1)}
    figures = bench.cpu_per_event(before, after, events=100, seconds=2.0, by="process")
    assert figures["cpu_us_per_event_by_process"] == {"web": 3000.0, "worker": 2000.0}
    assert figures["cores_by_process"] == {"web": 0.15, "worker": 0.1}
    assert figures["cpu_us_per_event"] == 5000.0
