"""Background work: the RQ worker, the job-wiring context, the daily jobs."""
