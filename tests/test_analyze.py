import pytest

from edgeprune.commands.analyze import analyze
from edgeprune.errors import InvalidArgumentError, ShapeError
from edgeprune.modelio import save_model
from keras_models import build_edsr


def test_reference_models_default_to_the_papers_input_size():
    assert analyze("edsr").input_size == (1020, 1020)
    report = analyze("sid")
    assert report.input_size == (1424, 2128) and report.model == "sid"


def test_sid_size_must_be_a_multiple_of_16():
    with pytest.raises(InvalidArgumentError, match="multiple of 16"):
        analyze("sid", (100, 100))


def test_saved_model_uses_its_static_size_or_needs_one(tmp_path):
    static = save_model(build_edsr(num_blocks=1, num_features=2, input_size=(12, 10)), tmp_path / "s.keras")
    assert analyze(str(static)).input_size == (12, 10)
    dynamic = save_model(build_edsr(num_blocks=1, num_features=2), tmp_path / "d.keras")
    with pytest.raises(ShapeError, match="give an input size"):
        analyze(str(dynamic))
    assert analyze(str(dynamic), (5, 6), "int8").totals.bw_bytes == analyze(str(dynamic), (5, 6)).totals.bw_elements
