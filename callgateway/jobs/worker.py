"""The RQ worker the Procfile runs: rq's own Worker, logging like the web process does."""

from __future__ import annotations

from typing import Any

from rq import Worker as RQWorker

from callgateway import logs


class Worker(RQWorker):
    """`rq worker --worker-class callgateway.jobs.worker.Worker`.

    Without it, the jobs' log records reach only Python's last-resort handler: plain text,
    warnings and up, no masking of numbers. rq's own lines (job ids and dotted paths) keep
    rq's handler, which does not pass them on, so nothing is printed twice.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        logs.configure()
        super().__init__(*args, **kwargs)
