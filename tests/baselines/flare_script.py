"""Runs inside .flare-venv (PyPI domino-flare 0.1.0): writes statistics.json and
constraints.json into the current directory with flare.generators.baseline(df)."""

import numpy as np
import pandas as pd
from flare.generators import baseline

rng = np.random.default_rng(5)
n = 200
income = rng.normal(100.0, 15.0, n)
income[::10] = np.nan
df = pd.DataFrame(
    {
        "age": rng.integers(18, 90, n),
        "income": income,
        "balance": rng.normal(0.0, 50.0, n),
        "city": pd.Series(rng.choice(["Paris", "Oslo", "Rome"], n), dtype="object"),
        "empty": [np.nan] * n,
        "flag": rng.random(n) < 0.5,
    }
)
baseline(df)
