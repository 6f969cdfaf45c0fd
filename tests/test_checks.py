import pytest

from edgeprune.core.checks import integer_at_least
from edgeprune.core.errors import InvalidArgumentError


def test_integer_at_least():
    assert integer_at_least("n", 3) == 3 and integer_at_least("n", 0, minimum=0) == 0
    for bad in (0, -1, 1.5, "2", True, None):
        with pytest.raises(InvalidArgumentError, match=f"n must be an integer >= 1, got {bad!r}"):
            integer_at_least("n", bad)


def test_fraction():
    from edgeprune.core.checks import fraction

    assert fraction("r", 0.25) == 0.25 and isinstance(fraction("r", 1 // 2 + 0.5), float)
    for bad in (0, 1, 1.5, -0.2, float("nan"), True, "0.5", None):
        with pytest.raises(InvalidArgumentError, match=rf"^r must be strictly between 0 and 1, got {bad!r}$"):
            fraction("r", bad)
    with pytest.raises(InvalidArgumentError, match=r"^target MAC must be strictly between 0 and 1 \(a fraction of "
                                                   r"the baseline\), got 1.5$"):
        fraction("target MAC", 1.5, "a fraction of the baseline")
