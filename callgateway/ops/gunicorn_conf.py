"""gunicorn settings for the web process: Prometheus's multiprocess mode.

The Procfile's `web` loads this (`gunicorn -c python:callgateway.ops.gunicorn_conf`), and
`callgateway serve` uses the same hooks. Each worker writes its counters to files in
`PROMETHEUS_MULTIPROC_DIR` (a fresh temporary directory when unset), and `/metrics`, in
whichever worker answers, sums them all. The directory is emptied when gunicorn starts: a
restart is a counter reset, which Prometheus's `rate()` expects.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any


def metrics_dir() -> Path:
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        path = tempfile.mkdtemp(prefix="callgateway-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    return Path(path)


def on_starting(server: Any) -> None:
    """In the master, once, before any worker exists."""
    folder = metrics_dir()
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()


def post_fork(server: Any, worker: Any) -> None:
    # A master that imported prometheus-client before the directory was set (the
    # `callgateway serve` command imports the product to validate the config) chose
    # in-process values; a worker must write to the shared files instead. Every metric of
    # callgateway.metrics has labels, so none has made a value yet.
    from prometheus_client import values

    if values.ValueClass is values.MutexValue:
        values.ValueClass = values.MultiProcessValue()


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
