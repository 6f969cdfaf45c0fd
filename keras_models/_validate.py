"""Argument checks shared by the model builders (raise InvalidArgumentError with what is supported)."""

from collections.abc import Sequence

from edgeprune.errors import InvalidArgumentError


def positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgumentError(f"{name} must be a positive integer, got {value!r}")
    return value


def widths(name: str, value, count: int) -> list[int]:
    """An int (same width everywhere) or a sequence of ``count`` positive ints."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != count:
            raise InvalidArgumentError(f"{name} must have {count} entries, got {len(value)}")
        return [positive_int(f"{name}[{i}]", v) for i, v in enumerate(value)]
    return [positive_int(name, value)] * count


def spatial_shape(value) -> tuple:
    """``(H, W)`` with positive ints or None (dynamic)."""
    if not isinstance(value, Sequence) or len(value) != 2:
        raise InvalidArgumentError(f"input_size must be (H, W) with ints or None, got {value!r}")
    for v in value:
        if v is not None:
            positive_int("input_size entries", v)
    return tuple(value)
