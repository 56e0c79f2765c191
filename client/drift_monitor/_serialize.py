"""Turn detector output (numpy scalars and arrays, NaN, tuples, ...) into plain JSON values."""

from __future__ import annotations

import enum
import math
import sys
from collections.abc import Mapping
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

__all__ = ["to_jsonable"]


def to_jsonable(value: Any) -> Any:
    """Return ``value`` as JSON-safe data; NaN and infinities become ``None``.

    numpy is never imported here: if it is not already loaded, no value can be a numpy
    object, so the SDK works without it installed.
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)  # bool subclasses and IntEnum become plain ints
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {_key(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(item) for item in value]
    numpy: Any = sys.modules.get("numpy")
    if numpy is not None:
        if isinstance(value, numpy.ndarray):
            return to_jsonable(value.tolist())
        if isinstance(value, numpy.generic):
            return to_jsonable(value.item())
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return to_jsonable(float(value))
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    # pandas Series/Index and similar array-likes
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return to_jsonable(tolist())
    raise TypeError(f"cannot send a {type(value).__name__} as JSON: {value!r:.80}")


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    plain = to_jsonable(key)
    return plain if isinstance(plain, str) else str(plain)
