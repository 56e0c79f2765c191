"""Background work: the worker loop that claims and runs queued jobs (the queue itself is in
``drift_backend.jobs``; the stale-run sweeper in ``drift_backend.drifts.sweeper``)."""
