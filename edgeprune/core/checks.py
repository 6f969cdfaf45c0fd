"""Argument checks shared by the library's entry points (each raises InvalidArgumentError with the value given)."""

import math

from edgeprune.core.errors import InvalidArgumentError


def integer_at_least(name: str, value, minimum: int = 1) -> int:
    """``value`` if it is an int (not a bool) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidArgumentError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def fraction(name: str, value, meaning: str | None = None) -> float:
    """``value`` as a float strictly inside (0, 1); ``meaning`` (e.g. "a fraction of the baseline") is said in the
    error."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or not 0 < value < 1:
        said = f" ({meaning})" if meaning else ""
        raise InvalidArgumentError(f"{name} must be strictly between 0 and 1{said}, got {value!r}")
    return float(value)


def finite_at_least(name: str, value, minimum: float = 0.0, meaning: str | None = None) -> float:
    """``value`` as a float, finite and >= ``minimum``; ``meaning`` is said in the error."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < minimum:
        said = f" ({meaning})" if meaning else ""
        raise InvalidArgumentError(f"{name} must be a finite number >= {minimum:g}{said}, got {value!r}")
    return float(value)


def device_only(given: dict) -> None:
    """Refuses options that mean something only on an Android device, run on the host: ``given`` maps each option's
    name to whether the user gave it."""
    names = [name for name, was_given in given.items() if was_given]
    if names:
        verb, them = ("mean", "them") if len(names) > 1 else ("means", "it")
        raise InvalidArgumentError(f"{', '.join(names)} only {verb} something on an Android device: drop {them}, or "
                                   "run with --device [SERIAL]")
