import pytest

from edgeprune.checks import integer_at_least
from edgeprune.errors import InvalidArgumentError


def test_integer_at_least():
    assert integer_at_least("n", 3) == 3 and integer_at_least("n", 0, minimum=0) == 0
    for bad in (0, -1, 1.5, "2", True, None):
        with pytest.raises(InvalidArgumentError, match=f"n must be an integer >= 1, got {bad!r}"):
            integer_at_least("n", bad)
