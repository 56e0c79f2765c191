"""Drift runs: one job's drift report, Running until it completes or fails."""
