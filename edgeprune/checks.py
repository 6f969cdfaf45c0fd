"""Argument checks shared by the library's entry points (each raises InvalidArgumentError with the value given)."""

from edgeprune.errors import InvalidArgumentError


def integer_at_least(name: str, value, minimum: int = 1) -> int:
    """``value`` if it is an int (not a bool) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidArgumentError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value
