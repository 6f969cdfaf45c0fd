"""Parsing and checking spatial input sizes (``HxW``)."""

import re

from edgeprune.core.errors import InvalidArgumentError

_SIZE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


def parse_input_size(text: str) -> tuple[int, int]:
    """``"1020x1020"`` -> ``(1020, 1020)``; height first. Raises InvalidArgumentError on anything else."""
    match = _SIZE.match(str(text))
    if not match:
        raise InvalidArgumentError(f"input size must be HxW with positive integers, e.g. 1020x1020; got {text!r}")
    h, w = int(match.group(1)), int(match.group(2))
    if h < 1 or w < 1:
        raise InvalidArgumentError(f"input size must be positive, got {h}x{w}")
    return h, w


def check_multiple(size: tuple[int, int], multiple: int, model_name: str) -> None:
    if multiple > 1 and (size[0] % multiple or size[1] % multiple):
        raise InvalidArgumentError(
            f"{model_name} needs an input size that is a multiple of {multiple} in both dimensions, got "
            f"{size[0]}x{size[1]}"
        )
