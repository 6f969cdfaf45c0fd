import pytest

from edgeprune.core.errors import InvalidArgumentError
from edgeprune.core.sizes import check_multiple, parse_input_size


@pytest.mark.parametrize("text, size", [("1020x1020", (1020, 1020)), ("16X32", (16, 32)), (" 3 x 5 ", (3, 5))])
def test_parses_height_then_width(text, size):
    assert parse_input_size(text) == size


@pytest.mark.parametrize("text", ["12x", "abc", "x5", "5", "1x2x3", "-1x5", "1.5x2", ""])
def test_rejects_malformed(text):
    with pytest.raises(InvalidArgumentError, match="input size must be HxW with positive integers"):
        parse_input_size(text)


def test_rejects_zero():
    with pytest.raises(InvalidArgumentError, match="input size must be positive, got 0x5"):
        parse_input_size("0x5")


def test_multiple():
    check_multiple((32, 48), 16, "sid")
    with pytest.raises(InvalidArgumentError, match="sid needs an input size that is a multiple of 16 .* got 32x40"):
        check_multiple((32, 40), 16, "sid")
