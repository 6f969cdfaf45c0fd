"""The import check: the difference relative to the reference's peak, on a real photo, and a refusal above 1e-5."""

import numpy as np
import pytest

from edgeprune.checkpoints.converted import Converted
from edgeprune.checkpoints.verify import compare, verify
from edgeprune.core.errors import ImportVerificationError
from keras_models import build_edsr


def test_compare_is_max_abs_difference_over_the_reference_peak():
    theirs = np.array([[0.0, -4.0], [2.0, 1.0]])
    got = compare(theirs + np.array([[1e-4, 0.0], [0.0, -2e-4]]), theirs)
    assert got["max_abs_difference"] == pytest.approx(2e-4) and got["reference_peak"] == 4.0
    assert got["max_relative_difference"] == pytest.approx(5e-5)
    with pytest.raises(ImportVerificationError, match=r"shape \[2\] but the original network's has \[3\]"):
        compare(np.zeros(2), np.zeros(3))


def _converted(model, reference):
    return Converted(model=model, architecture="edsr", config={}, conversions=[], reference=reference,
                     framework="a test double", verify_size=(16, 12))


def test_verify_runs_both_on_a_real_photo_and_refuses_a_difference_above_the_limit():
    model = build_edsr(num_blocks=1, num_features=4)
    seen = []

    def exact(x):
        seen.append(x)
        return model(x).numpy()

    record = verify(_converted(model, exact))
    assert record["passed"] and record["max_relative_difference"] == 0.0 and record["input_shape"] == [1, 16, 12, 3]
    assert "photo" in record["input"] and 0.05 < float(seen[0].std()) and seen[0].min() >= 0 <= seen[0].max() <= 1
    with pytest.raises(ImportVerificationError, match=r"max relative difference 2e-05 > 1e-05; nothing was written"):
        verify(_converted(model, lambda x: model(x).numpy() * (1 + 2e-5)))
    with pytest.raises(ImportVerificationError, match="max relative difference nan"):
        verify(_converted(model, lambda x: model(x).numpy() * np.nan))
