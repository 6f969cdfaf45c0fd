"""edgeprune.prune.gating's validation data: what the gate measures quality on is read once, as whole images, and
data it could never finish reading (an endless tf.data pipeline) is refused before training starts."""

import numpy as np
import pytest

from edgeprune.core.errors import ShapeError
from edgeprune.core.runtime import tf
from edgeprune.prune.gating import validation_pairs


def _batch(n, side=8):
    rng = np.random.default_rng(n)
    return rng.random((n, side, side, 3), np.float32), rng.random((n, 2 * side, 2 * side, 3), np.float32)


def test_pairs_batches_and_a_finite_dataset_give_one_pair_per_image():
    x, y = _batch(3)
    assert len(validation_pairs((x, y))) == 3
    assert len(validation_pairs([(x[0], y[0]), (x[1], y[1])])) == 2
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(2)
    pairs = validation_pairs(dataset)
    assert len(pairs) == 3 and np.array_equal(pairs[2][0], x[2]) and np.array_equal(pairs[2][1], y[2])
    assert len(validation_pairs(dataset.repeat().take(3))) == 5  # batches of 2, 1, 2: endless, then bounded


def test_an_endless_dataset_is_refused_not_read_forever():
    x, y = _batch(2)
    with pytest.raises(ShapeError, match="the validation dataset repeats forever: give a finite one"):
        validation_pairs(tf.data.Dataset.from_tensor_slices((x, y)).batch(1).repeat())


@pytest.mark.parametrize("data, message", [
    ([np.zeros((4, 4, 3))], "validation data must hold \\(input, target\\) pairs, got ndarray"),
    ([(np.zeros((4, 4)), np.zeros((8, 8)))], "are not images"),
    ([], "validation data holds no image"),
])
def test_bad_validation_data_is_one_clear_error(data, message):
    with pytest.raises(ShapeError, match=message):
        validation_pairs(data)
