"""EDSR-PyTorch state dicts -> our EDSR: the configuration read from the tensors, the conversion checked against the
PyTorch network on a real photo (x2, x3, x4, the full EDSR's configuration at tiny widths, a pruned variant, both
value ranges), and every malformed state dict refused with a one-line message."""

import numpy as np
import pytest

from edgeprune.checkpoints import edsr_torch
from edgeprune.checkpoints.verify import verify
from edgeprune.core.errors import CheckpointError, ImportVerificationError, InvalidArgumentError

torch = pytest.importorskip("torch")
from edgeprune.checkpoints.torch_reference import build_torch_edsr  # noqa: E402


def _save(tmp_path, net, name="m.pt"):
    path = tmp_path / name
    torch.save(net.state_dict(), path)
    return path


def _net(seed=0, features=8, blocks=(8, 8), upsample=((2, 8),), **kwargs):
    torch.manual_seed(seed)
    return build_torch_edsr(features, list(blocks), list(upsample), **kwargs)


@pytest.mark.parametrize("upsample, scale", [(((2, 8),), 2), (((3, 8),), 3), (((2, 8), (2, 8)), 4)])
def test_x2_x3_x4_import_within_1e5_of_pytorch_on_a_real_photo(tmp_path, upsample, scale):
    converted = edsr_torch.convert(_save(tmp_path, _net(upsample=upsample)))
    assert converted.config["scale"] == scale and converted.config["upsample"] == [list(s) for s in upsample]
    assert converted.model.output_shape == (None, None, None, 3)
    check = verify(converted)
    assert check["passed"] and check["max_relative_difference"] <= 1e-5
    assert "photo" in check["input"] and check["reference"].startswith("PyTorch")
    assert converted.model.count_params() == sum(v.numel() for k, v in _net(upsample=upsample).state_dict().items()
                                                 if "mean" not in k)


def test_the_full_edsr_configuration_at_tiny_widths(tmp_path):
    """32 blocks and res_scale 0.1 (the full EDSR's), at 8 features: res_scale is not in a state dict, so given."""
    path = _save(tmp_path, _net(blocks=[8] * 32, res_scale=0.1))
    converted = edsr_torch.convert(path, res_scale=0.1)
    assert converted.config["num_blocks"] == 32 and converted.config["res_scale"] == 0.1
    assert verify(converted)["max_relative_difference"] <= 1e-5
    # res_scale is not in the file: a wrong one builds both networks wrong alike, so the check cannot see it; the
    # record therefore says where it came from, and left alone at 8 features it is assumed 1 (EDSR-baseline's)
    assumed = edsr_torch.convert(path)
    assert assumed.config["res_scale"] == 1.0 and assumed.config["res_scale_source"].startswith("assumed")
    assert converted.config["res_scale_source"] == "given"


def test_the_full_edsr_shape_assumes_its_res_scale():
    shapes = edsr_torch.expected_shapes({"num_features": 256, "n_colors": 3, "block_features": [256] * 32,
                                         "num_blocks": 32, "upsample": [[2, 256]], "rgb_mean": [0.4488, 0.4371, 0.404]})
    sd = {k: np.zeros(s, np.float32) for k, s in shapes.items()}
    sd["sub_mean.weight"] = sd["add_mean.weight"] = np.eye(3, dtype=np.float32).reshape(3, 3, 1, 1)
    sd["sub_mean.bias"] = -255 * np.array([0.4488, 0.4371, 0.4040], np.float32)
    sd["add_mean.bias"] = -sd["sub_mean.bias"]
    config = edsr_torch.infer_config(sd, "edsr_x2.pt")
    assert config["res_scale"] == 0.1 and "full EDSR" in config["res_scale_source"]
    assert sum(int(np.prod(s)) for k, s in shapes.items() if "mean" not in k) == 40_729_603  # EDSR x2: 40.7M


def test_a_pruned_variant_with_its_own_widths_imports(tmp_path):
    converted = edsr_torch.convert(_save(tmp_path, _net(features=12, blocks=(5, 9, 3), upsample=((2, 7), (2, 6)))))
    assert converted.config["block_features"] == [5, 9, 3] and converted.config["upsample"] == [[2, 7], [2, 6]]
    assert verify(converted)["max_relative_difference"] <= 1e-5


def test_a_model_trained_on_0_1_pixels_is_read_as_such(tmp_path):
    converted = edsr_torch.convert(_save(tmp_path, _net(rgb_range=1.0)))
    assert converted.config["rgb_range"] == 1.0 and "read from sub_mean" in converted.config["rgb_range_source"]
    assert verify(converted)["max_relative_difference"] <= 1e-5


def test_without_mean_shift_the_range_is_assumed_or_given(tmp_path):
    path = _save(tmp_path, _net(rgb_mean=None))
    converted = edsr_torch.convert(path, rgb_range=1.0)
    assert converted.config["rgb_mean"] is None and converted.config["rgb_range"] == 1.0
    assert verify(converted)["max_relative_difference"] <= 1e-5


def test_the_pixel_shuffle_permutation_is_what_makes_it_agree(tmp_path, monkeypatch):
    path = _save(tmp_path, _net())
    monkeypatch.setattr(edsr_torch, "shuffle_permutation", lambda r, c: np.arange(r * r * c))
    with pytest.raises(ImportVerificationError, match="nothing was written"):
        verify(edsr_torch.convert(path))


def test_the_numpy_reference_checks_the_same_import(tmp_path):
    converted = edsr_torch.convert(_save(tmp_path, _net(upsample=((3, 8),))), reference="numpy")
    check = verify(converted)
    assert check["reference"].startswith("numpy transcription") and check["max_relative_difference"] <= 1e-5


def _tampered(tmp_path, edit):
    sd = {k: v.clone() for k, v in _net().state_dict().items()}
    edit(sd)
    path = tmp_path / "bad.pt"
    torch.save(sd, path)
    return path


@pytest.mark.parametrize("edit, message", [
    (lambda sd: sd.pop("body.1.body.2.bias"), r"lacks 1 tensor\(s\) of the EDSR .*body\.1\.body\.2\.bias"),
    (lambda sd: sd.update({"body.0.body.1.weight": torch.ones(8)}), r"has 1 tensor\(s\) an EDSR-PyTorch network "
                                                                      r"does not: body\.0\.body\.1\.weight"),
    (lambda sd: sd.update({"body.0.body.2.weight": torch.ones(8, 7, 3, 3)}),
     r"'body\.0\.body\.2\.weight' has shape \[8, 7, 3, 3\], expected \[8, 8, 3, 3\]"),
    (lambda sd: sd.update({"tail.0.0.weight": torch.ones(20, 8, 3, 3), "tail.0.0.bias": torch.ones(20)}),
     "neither x2"),
    (lambda sd: sd.update({"sub_mean.bias": torch.tensor([-3.0, -2.0, -1.0]), "add_mean.bias":
                           torch.tensor([3.0, 2.0, 1.0])}), "cannot tell the value range.*give --rgb-range"),
    (lambda sd: sd.update({"sub_mean.weight": 2 * sd["sub_mean.weight"]}), "not the identity"),
])
def test_malformed_state_dicts_are_refused(tmp_path, edit, message):
    with pytest.raises(CheckpointError, match=message):
        edsr_torch.convert(_tampered(tmp_path, edit))


def test_another_architecture_is_named_as_such(tmp_path):
    torch.save({"conv1.weight": torch.ones(4, 3, 3, 3), "fc.weight": torch.ones(2, 4)}, tmp_path / "resnet.pt")
    with pytest.raises(CheckpointError, match=r"not an EDSR-PyTorch state dict \(no 'head.0.weight'; its keys "
                                              r"begin conv1.weight, fc.weight\)"):
        edsr_torch.convert(tmp_path / "resnet.pt")
    torch.save({"conv_first.weight": torch.ones(4, 3, 3, 3)}, tmp_path / "basicsr.pt")
    with pytest.raises(CheckpointError, match="looks like a BasicSR EDSR"):
        edsr_torch.convert(tmp_path / "basicsr.pt")


def test_options_are_checked(tmp_path):
    path = _save(tmp_path, _net())
    with pytest.raises(CheckpointError, match="is an x2 EDSR .* not x4 as given"):
        edsr_torch.convert(path, scale=4)
    with pytest.raises(InvalidArgumentError, match="--res-scale must be positive"):
        edsr_torch.convert(path, res_scale=0)
    with pytest.raises(InvalidArgumentError, match="--scale must be 2, 3, 4 or 8"):
        edsr_torch.convert(path, scale=5)
