"""Reading state dicts, without torch: what the readers raise for a bad file is a one-line CheckpointError, and
anything else (a fault of the program) surfaces as itself."""

from types import SimpleNamespace

import numpy as np
import pytest

from edgeprune.checkpoints import state_dict
from edgeprune.checkpoints.state_dict import load_state_dict
from edgeprune.core.errors import CheckpointError


def _torch_whose_load_raises(exc):
    def load(*args, **kwargs):
        raise exc

    return lambda why: SimpleNamespace(load=load)


def test_a_truncated_safetensors_file_is_a_checkpoint_error(tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / "t.safetensors"
    save_file({"head.0.weight": np.ones((2, 3, 3, 3), np.float32)}, str(path))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"^'.*t\.safetensors' is not a readable \.safetensors file \(truncated"):
        load_state_dict(path)


def test_what_torch_raises_for_a_bad_file_is_a_checkpoint_error(tmp_path, monkeypatch):
    path = tmp_path / "w.pt"
    path.write_bytes(b"PK\x03\x04 cut")
    monkeypatch.setattr(state_dict, "torch_or_explain", _torch_whose_load_raises(
        RuntimeError("PytorchStreamReader failed reading zip archive: failed finding central directory")))
    with pytest.raises(CheckpointError, match=r"^'.*w\.pt' is not a readable PyTorch checkpoint \(truncated or not a "
                                              r"torch\.save file: PytorchStreamReader failed reading zip archive"):
        load_state_dict(path)


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_a_fault_of_the_program_is_not_called_a_bad_file(tmp_path, monkeypatch, suffix):
    path = tmp_path / f"w{suffix}"
    path.write_bytes(b"anything")
    fault = AttributeError("'NoneType' object has no attribute 'items'")
    monkeypatch.setattr(state_dict, "torch_or_explain", _torch_whose_load_raises(fault))
    import safetensors.numpy

    monkeypatch.setattr(safetensors.numpy, "load_file", _torch_whose_load_raises(fault)(None).load)
    with pytest.raises(AttributeError, match="no attribute 'items'"):
        load_state_dict(path)
