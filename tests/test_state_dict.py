"""Reading state dicts: .pt through weights-only loading (pickled code refused), .safetensors without torch, common
wrappings undone, and every bad file a one-line CheckpointError."""

import pickle
import sys

import numpy as np
import pytest

from edgeprune.checkpoints.state_dict import load_state_dict
from edgeprune.core.errors import CheckpointError, MissingDependencyError

torch = pytest.importorskip("torch")


class Payload:
    """Unpickling this runs code: what weights-only loading exists to refuse."""

    def __reduce__(self):
        return (print, ("pickled code ran",))


def _sd():
    return {"head.0.weight": torch.ones(2, 3, 3, 3), "head.0.bias": torch.arange(2, dtype=torch.float32)}


def test_pt_and_safetensors_give_the_same_float32_arrays(tmp_path):
    from safetensors.torch import save_file

    torch.save(_sd(), tmp_path / "a.pt")
    save_file(_sd(), str(tmp_path / "a.safetensors"))
    a, b = load_state_dict(tmp_path / "a.pt"), load_state_dict(tmp_path / "a.safetensors")
    assert sorted(a) == sorted(b) == ["head.0.bias", "head.0.weight"]
    for k in a:
        assert a[k].dtype == np.float32 and np.array_equal(a[k], b[k])


def test_wrappers_and_the_dataparallel_prefix_are_undone(tmp_path):
    torch.save({"state_dict": {f"module.{k}": v for k, v in _sd().items()}, "epoch": 3}, tmp_path / "w.pth")
    assert sorted(load_state_dict(tmp_path / "w.pth")) == ["head.0.bias", "head.0.weight"]
    torch.save({"params": _sd()}, tmp_path / "basicsr.pth")
    assert sorted(load_state_dict(tmp_path / "basicsr.pth")) == ["head.0.bias", "head.0.weight"]


def test_pickled_code_is_refused_and_never_runs(tmp_path, capsys):
    torch.save({"head.0.weight": torch.ones(1), "evil": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="pickled code or objects, which weights-only loading refuses"):
        load_state_dict(tmp_path / "evil.pt")
    assert "pickled code ran" not in capsys.readouterr().out
    (tmp_path / "plain.pt").write_bytes(pickle.dumps(Payload()))  # a plain pickle, not even a torch.save zip
    with pytest.raises(CheckpointError, match="weights-only|not a readable"):
        load_state_dict(tmp_path / "plain.pt")
    assert "pickled code ran" not in capsys.readouterr().out


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_truncated_files_are_refused(tmp_path, suffix):
    from safetensors.torch import save_file

    path = tmp_path / f"t{suffix}"
    torch.save(_sd(), path) if suffix == ".pt" else save_file(_sd(), str(path))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_state_dict(path)


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing.pt", "does not exist"),
    (lambda p: p, "is a directory"),
    (lambda p: (p / "w.npz").write_bytes(b"x") and p / "w.npz", "expected a .pt, .pth or .safetensors"),
])
def test_bad_paths(tmp_path, make, message):
    with pytest.raises(CheckpointError, match=message):
        load_state_dict(make(tmp_path))


def test_not_a_state_dict(tmp_path):
    torch.save([torch.ones(1)], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="does not hold a state dict"):
        load_state_dict(tmp_path / "list.pt")
    torch.save({"head.0.weight": torch.ones(1), "note": "text"}, tmp_path / "mixed.pt")
    with pytest.raises(CheckpointError, match="entry 'note' is a str, not a tensor"):
        load_state_dict(tmp_path / "mixed.pt")


def test_without_torch_a_pt_says_how_to_install_it_and_safetensors_still_reads(tmp_path, monkeypatch):
    from safetensors.torch import save_file

    torch.save(_sd(), tmp_path / "a.pt")
    save_file(_sd(), str(tmp_path / "a.safetensors"))
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install 'edgeprune\[torch\]'.*or convert the checkpoint "
                                                     r"to \.safetensors"):
        load_state_dict(tmp_path / "a.pt")
    assert sorted(load_state_dict(tmp_path / "a.safetensors")) == ["head.0.bias", "head.0.weight"]
