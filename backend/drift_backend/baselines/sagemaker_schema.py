"""Lenient pydantic models of SageMaker Model Monitor ``statistics.json``/``constraints.json``.

Every field but the feature names is optional and ``null`` is accepted (Flare writes many),
unknown keys are ignored; types are checked so a malformed file is a 422 naming the field.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from drift_backend.baselines.model import CategoricalDriftMethod, ComparisonMethod, InferredType

_TYPES: dict[str, InferredType] = {
    "integral": "Integral",
    "fractional": "Fractional",
    "string": "String",
    "unknown": "Unknown",
}
_METHODS: dict[str, ComparisonMethod] = {
    "simple": "Simple",
    "linf_simple": "Simple",
    "robust": "Robust",
    "linf_robust": "Robust",
}
_CATEGORICAL_METHODS: dict[str, CategoricalDriftMethod] = {
    "linfinity": "LInfinity",
    "linf": "LInfinity",
    "chisquared": "ChiSquared",
    "chi_squared": "ChiSquared",
}


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


def _inferred(value: Any) -> InferredType:
    if value is None:
        return "Unknown"
    found = _TYPES.get(str(value).lower())
    if found is None:
        raise ValueError(f"inferred_type must be one of {sorted(_TYPES.values())}")
    return found


def enabled(value: str | bool | None, default: bool) -> bool:
    """``"Enabled"``/``"Disabled"`` (or a JSON boolean) as a boolean."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return value.strip().lower() in ("enabled", "true")


def describe(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"{where}: {first['msg']}"


class Common(_Lenient):
    num_present: int | None = None
    num_missing: int | None = None


class KllBucket(_Lenient):
    lower_bound: float
    upper_bound: float
    count: float


class SketchParameters(_Lenient):
    c: float | None = None
    k: float | None = None


class Sketch(_Lenient):
    parameters: SketchParameters | None = None
    data: list[list[float]] | None = None


class Kll(_Lenient):
    buckets: list[KllBucket] | None = None
    sketch: Sketch | None = None


class NumericalDistribution(_Lenient):
    kll: Kll | None = None


class NumericalStatistics(_Lenient):
    common: Common | None = None
    mean: float | None = None
    sum: float | None = None
    std_dev: float | None = None
    min: float | None = None
    max: float | None = None
    distribution: NumericalDistribution | None = None


class CategoryBucket(_Lenient):
    value: str
    count: int

    @field_validator("value", mode="before")
    @classmethod
    def _text(cls, v: Any) -> str:
        return v if isinstance(v, str) else json.dumps(v)


class CategoricalDistribution(_Lenient):
    buckets: list[CategoryBucket] | None = None


class StringDistribution(_Lenient):
    categorical: CategoricalDistribution | None = None


class StringStatistics(_Lenient):
    common: Common | None = None
    distinct_count: int | None = None
    distribution: StringDistribution | None = None


class StatisticsFeature(_Lenient):
    name: str
    inferred_type: InferredType = "Unknown"
    numerical_statistics: NumericalStatistics | None = None
    string_statistics: StringStatistics | None = None

    @field_validator("inferred_type", mode="before")
    @classmethod
    def _type(cls, v: Any) -> InferredType:
        return _inferred(v)


class Dataset(_Lenient):
    item_count: int | None = None


class Statistics(_Lenient):
    version: int | None = None
    dataset: Dataset | None = None
    features: list[StatisticsFeature]


class NumConstraints(_Lenient):
    is_non_negative: bool | None = None


class StringConstraints(_Lenient):
    domains: list[str] | None = None

    @field_validator("domains", mode="before")
    @classmethod
    def _texts(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [x if isinstance(x, str) else json.dumps(x) for x in v]
        return v


class ConstraintFeature(_Lenient):
    name: str
    inferred_type: InferredType = "Unknown"
    completeness: float | None = None
    num_constraints: NumConstraints | None = None
    string_constraints: StringConstraints | None = None
    monitoringConfigOverrides: dict[str, Any] | None = None

    @field_validator("inferred_type", mode="before")
    @classmethod
    def _type(cls, v: Any) -> InferredType:
        return _inferred(v)


class DistributionConstraints(_Lenient):
    perform_comparison: str | bool | None = None
    comparison_threshold: float | None = None
    comparison_method: str | None = None
    #: The spelling in older AWS docs.
    comparion_method: str | None = None
    categorical_comparison_threshold: float | None = None
    categorical_drift_method: str | None = None

    @field_validator("comparison_method", "comparion_method")
    @classmethod
    def _method(cls, v: str | None) -> str | None:
        if v is not None and v.lower() not in _METHODS:
            raise ValueError("comparison_method must be Simple, Robust, linf_simple or linf_robust")
        return v

    @field_validator("categorical_drift_method")
    @classmethod
    def _categorical(cls, v: str | None) -> str | None:
        if v is not None and v.lower() not in _CATEGORICAL_METHODS:
            raise ValueError("categorical_drift_method must be LInfinity or ChiSquared")
        return v

    def method(self) -> ComparisonMethod | None:
        raw = self.comparison_method or self.comparion_method
        return _METHODS[raw.lower()] if raw else None

    def categorical_method(self) -> CategoricalDriftMethod | None:
        raw = self.categorical_drift_method
        return _CATEGORICAL_METHODS[raw.lower()] if raw else None


class MonitoringConfig(_Lenient):
    evaluate_constraints: str | bool | None = None
    emit_metrics: str | bool | None = None
    datatype_check_threshold: float | None = None
    domain_content_threshold: float | None = None
    distribution_constraints: DistributionConstraints | None = None


class Constraints(_Lenient):
    version: int | None = None
    features: list[ConstraintFeature]
    monitoring_config: MonitoringConfig | None = None
