"""Alert rules: conditions, state per (rule, model), grouping and timing, silences."""
