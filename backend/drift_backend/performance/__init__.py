"""Model performance monitoring: predictions, late ground truth, a labelled reference, and
metrics per time window from incrementally kept statistics. See ``docs/performance.md``."""
