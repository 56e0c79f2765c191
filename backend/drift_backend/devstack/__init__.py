"""The embedded local stack (``drift-monitor-server dev``): development and tests only."""
