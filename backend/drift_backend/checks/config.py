"""How an experiment's checks decide: tests, thresholds, correction, dataset rule."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from drift_backend.stats import CATEGORICAL_TESTS, NUMERICAL_TESTS
from drift_backend.stats.correction import Correction

TestName = Annotated[str, Field(min_length=1, max_length=64)]


class FeatureConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    test: TestName | None = None
    threshold: float | None = Field(default=None, gt=0)


class DriftConfig(BaseModel):
    """Per experiment (PATCH ``drift_config``), overridable per check."""

    model_config = ConfigDict(extra="forbid")
    numerical_test: TestName = "auto"
    categorical_test: TestName = "auto"
    features: dict[str, FeatureConfig] = Field(default_factory=dict, max_length=1000)
    alpha: float = Field(default=0.05, gt=0, lt=1)
    correction: Correction = "bh"
    #: Minimum effect (normed Wasserstein for numerical, Cramér's V for categorical) below
    #: which a significant p-value is not called drift; None turns the floor off.
    effect_size_floor: float | None = Field(default=None, ge=0)
    #: Dataset drift when at least this share of the tested features drifted.
    drift_share: float = Field(default=0.5, gt=0, le=1)
    #: Also run the multivariate MMD test on row samples (about 0.5 s more per check); it
    #: sees changes in how features move together that per-feature tests miss.
    multivariate: bool = False
    mmd_permutations: int = Field(default=200, ge=10, le=2000)
    #: The column holding the model's prediction (its predicted class, say). It is tested on
    #: its own as prediction drift, at ``alpha`` and outside the features' correction and
    #: dataset rule: a model's output drifting is news even when its inputs look stable.
    prediction: str | None = Field(default=None, min_length=1, max_length=256)

    @model_validator(mode="after")
    def _known_tests(self) -> DriftConfig:
        if self.numerical_test != "auto" and self.numerical_test not in NUMERICAL_TESTS:
            raise ValueError(f"numerical_test: unknown test {self.numerical_test!r}")
        if self.categorical_test != "auto" and self.categorical_test not in CATEGORICAL_TESTS:
            raise ValueError(f"categorical_test: unknown test {self.categorical_test!r}")
        known = set(NUMERICAL_TESTS) | set(CATEGORICAL_TESTS)
        for name, feature in self.features.items():
            if feature.test is not None and feature.test not in known:
                raise ValueError(f"features.{name}.test: unknown test {feature.test!r}")
        return self
