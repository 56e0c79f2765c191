"""Background work: the stale-run sweeper (and later the drift-check job queue)."""
