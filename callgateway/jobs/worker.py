"""The RQ worker the Procfile runs: rq's own Worker, logging like the web process does, and
running jobs queued under a dotted path that has since moved."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rq import Worker as RQWorker
from rq.job import Job as RQJob
from rq.utils import import_attribute

from callgateway import logs

# RQ stores a job's function as its dotted path, and a job may wait in Redis for hours (a
# delivery's retry, tomorrow's sweep, a recording's backoff) across a release that moved
# the function. Old path -> new path: when a function moves, add its row here, and keep
# it while a job queued before that release may still wait, RQ's retries of it included
# (they keep the old path); what such a job queues next goes under the new path.
RENAMED: dict[str, str] = {
    # Issue 15: recordings' jobs moved to recordings/, the daily job and the booking
    # outbox into their rooms.
    "callgateway.jobs.transfer_recording": "recordings.jobs.transfer_recording",
    "callgateway.jobs.adopt_recording": "recordings.jobs.adopt_recording",
    "callgateway.jobs.find_call_recordings": "recordings.jobs.find_call_recordings",
    "callgateway.jobs.retention_sweep": "callgateway.jobs.daily.retention_sweep",
    "callgateway.outbox.deliver_job": "callgateway.jobs.outbox.deliver_job",
    # Reminders and check-ins are booked days ahead: their entry points joined the jobs.
    **{
        f"callgateway.outbound.jobs.{name}": f"callgateway.jobs.outbound.{name}"
        for name in (
            "send_reminder",
            "checkin_attempt",
            "checkin_watchdog",
            "checkin_alerts",
            "daily_summary",
        )
    },
}


class Job(RQJob):
    """rq's Job, resolving a moved function through RENAMED. The stored path is left as it
    was: the job runs, and anything it queues next goes under the new path."""

    @property
    def func(self) -> Callable[..., Any] | None:
        name = self.func_name
        if name in RENAMED and self.instance is None:
            return import_attribute(RENAMED[name])
        return super().func


class Worker(RQWorker):
    """`rq worker --worker-class callgateway.jobs.worker.Worker`.

    One log stream: the jobs' records and rq's own lines (which quote job arguments) are
    written by `logs.configure()`'s JSON handler, numbers masked. `rq worker` gives rq's
    loggers plain-text handlers of its own before this class exists; `configure()` takes
    them off, and rq's later set-up (`bootstrap`) then finds the root's handler and adds none.
    """

    job_class = Job

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        logs.configure()
        # rq's CLI always passes its --job-class, rq's own Job unless told otherwise: ours
        # must win, or a job queued before a move would fail to import its function.
        if kwargs.get("job_class") in (None, RQJob, "rq.job.Job"):
            kwargs["job_class"] = Job
        super().__init__(*args, **kwargs)
