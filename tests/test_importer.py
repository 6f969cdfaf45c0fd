"""`edgeprune import`: a verified model and its record, all or nothing, one-line errors with exit code 2, and the
workflow it exists for: pruning the imported model on the user's own images."""

import hashlib
import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from edgeprune.checkpoints import importer
from edgeprune.cli import cli
from edgeprune.core.errors import ImportVerificationError
from edgeprune.core.modelio import load_model

torch = pytest.importorskip("torch")
from edgeprune.checkpoints.torch_reference import build_torch_edsr  # noqa: E402


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="edgeprune")


def _checkpoint(tmp_path, name="edsr.pt", upsample=((2, 8),)):
    torch.manual_seed(0)
    net = build_torch_edsr(8, [8, 8], list(upsample))
    path = tmp_path / name
    if name.endswith(".safetensors"):
        from safetensors.torch import save_file
        save_file(net.state_dict(), str(path))
    else:
        torch.save(net.state_dict(), path)
    return path, net


def test_import_writes_a_safe_model_and_its_record(tmp_path):
    source, net = _checkpoint(tmp_path)
    out = tmp_path / "out" / "edsr.keras"
    result = run("import", "edsr", source, "--out", out)
    assert result.exit_code == 0, result.output
    assert "max relative difference" in result.stdout and f"wrote {out}" in result.stdout
    assert sorted(p.name for p in out.parent.iterdir()) == ["edsr.import.json", "edsr.keras"]
    record = json.loads((out.parent / "edsr.import.json").read_text())
    assert record["format"] == "edgeprune-import" and record["architecture"] == "edsr"
    assert record["files"] == [{"path": str(source), "bytes": source.stat().st_size,
                                "sha256": hashlib.sha256(source.read_bytes()).hexdigest()}]
    assert record["config"]["scale"] == 2 and record["config"]["num_blocks"] == 2
    assert record["verification"]["passed"] and record["verification"]["max_relative_difference"] <= 1e-5
    model = load_model(out)  # safe_mode=True
    x = np.random.default_rng(0).uniform(0, 1, (1, 10, 12, 3)).astype(np.float32)
    with torch.no_grad():
        want = net(torch.from_numpy(x.transpose(0, 3, 1, 2)) * 255).numpy().transpose(0, 2, 3, 1) / 255
    np.testing.assert_allclose(model(x).numpy(), want, atol=1e-5 * np.abs(want).max())


def test_json_output_is_the_record(tmp_path):
    source, _ = _checkpoint(tmp_path, "edsr.safetensors", upsample=((3, 8),))
    result = run("import", "edsr", source, "--out", tmp_path / "m.keras", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == json.loads((tmp_path / "m.import.json").read_text())


def test_a_failed_check_writes_nothing(tmp_path, monkeypatch):
    from edgeprune.checkpoints import edsr_torch

    source, _ = _checkpoint(tmp_path)
    monkeypatch.setattr(edsr_torch, "shuffle_permutation", lambda r, c: np.arange(r * r * c)[::-1])
    out = tmp_path / "out" / "edsr.keras"
    with pytest.raises(ImportVerificationError):
        importer.import_checkpoint("edsr", source, out)
    assert not out.parent.exists() or not list(out.parent.iterdir())


class Payload:
    def __reduce__(self):
        return (print, ("pickled code ran",))


def _truncated(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    return path


def _tampered(tmp_path, edit):
    torch.manual_seed(0)
    sd = build_torch_edsr(8, [8, 8], [(2, 8)]).state_dict()
    edit(sd)
    torch.save(sd, tmp_path / "t.pt")
    return tmp_path / "t.pt"


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "nope.pt", "does not exist"),
    (lambda p: (p / "x.pt").write_bytes(b"\x80\x02garbage") and p / "x.pt", "not a readable PyTorch checkpoint"),
    (lambda p: torch.save({"conv1.weight": torch.ones(1)}, p / "r.pt") or p / "r.pt", "not an EDSR-PyTorch"),
    (lambda p: torch.save({"head.0.weight": torch.ones(1), "x": Payload()}, p / "e.pt") or p / "e.pt",
     "holds pickled code or objects"),
    (lambda p: _truncated(_checkpoint(p)[0]), "truncated"),
    (lambda p: _tampered(p, lambda sd: sd.pop("tail.1.bias")), "lacks 1 tensor(s)"),
    (lambda p: _tampered(p, lambda sd: sd.update({"extra.weight": torch.ones(1)})), "does not: extra.weight"),
    (lambda p: _tampered(p, lambda sd: sd.update({"head.0.bias": torch.ones(5)})), "has shape [5], expected [8]"),
])
def test_bad_checkpoints_are_one_line_exit_2_nothing_written(tmp_path, make, message):
    out = tmp_path / "out" / "m.keras"
    result = run("import", "edsr", make(tmp_path), "--out", out)
    assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()


def test_bad_options_exit_2(tmp_path):
    source, _ = _checkpoint(tmp_path)
    for args, message in [(["--out", tmp_path / "m.h5"], "must end in .keras"),
                          (["--out", tmp_path / "m.keras", "--scale", "3"], "not x3 as given"),
                          ([], "Missing option '--out'")]:
        result = run("import", "edsr", source, *args)
        assert result.exit_code == 2 and message in result.stderr, result.output


def _photo_folder(folder, count=10):
    """Real photos (scikit-image's data, which are also the built-in validation set) cut into tiles for a folder."""
    from edgeprune.data.photos import builtin_photo

    folder.mkdir(parents=True)
    photo = builtin_photo("astronaut.png")
    for i in range(count):
        r, c = divmod(i, 4)
        Image.fromarray(photo[r * 96:(r + 1) * 96, c * 96:(c + 1) * 96]).save(folder / f"{i:02d}.png")
    return folder


def test_an_imported_model_prunes_on_the_users_data_against_its_own_quality(tmp_path):
    from edgeprune.prune.pipeline import prune_command

    source, _ = _checkpoint(tmp_path)
    model = tmp_path / "imported.keras"
    importer.import_checkpoint("edsr", source, model)
    data = _photo_folder(tmp_path / "photos")
    tiny = {"finetune_steps": 2, "batch_size": 2, "patch": 16, "val_side": 64, "max_iterations": 1}
    report = prune_command(str(model), tmp_path / "run", data=data, tolerance_psnr=50.0, tolerance_ssim=1.0,
                           target_mac=0.9, overrides=tiny, echo=lambda _: None, verbose=0)
    assert report["data"]["train"]["kind"].startswith("HR folder") and report["data"]["validation"]["root"] == str(data)
    baseline = load_model(model)  # the gate compares with the imported model itself, on the held-out images
    from edgeprune.train.fit import load_data, validate

    _, val = load_data("edsr", str(data), {**tiny}, 2)
    assert report["baseline"]["psnr"] == pytest.approx(validate(baseline, val)["psnr"], abs=1e-4)
    assert report["control"]["steps"] == report["finetune_steps"]["lineage"]


def test_import_sid_from_a_tf1_checkpoint_by_prefix_file_or_folder(tmp_path):
    from test_sid_tf1 import train_and_save

    prefix = train_and_save(tmp_path / "sony" / "model.ckpt")
    for i, given in enumerate([prefix, prefix + ".index", tmp_path / "sony"]):
        out = tmp_path / f"sid{i}.keras"
        result = run("import", "sid", given, "--out", out, "--json")
        assert result.exit_code == 0, result.output
        record = json.loads(result.stdout)
        names = sorted(p.rsplit("/", 1)[-1] for p in (f["path"] for f in record["files"]))
        assert names == ["model.ckpt.data-00000-of-00001", "model.ckpt.index"]
        assert all(f["sha256"] == hashlib.sha256(open(f["path"], "rb").read()).hexdigest() for f in record["files"])
        assert record["verification"]["max_relative_difference"] <= 1e-5 and "optimizer slots" in record["ignored"][0]
        assert load_model(out).input_shape == (None, None, None, 4)
    result = run("import", "sid", tmp_path / "nothing", "--out", tmp_path / "x.keras")
    assert result.exit_code == 2 and "Error:" in result.stderr and not (tmp_path / "x.keras").exists()


def test_without_torch_safetensors_import_checked_in_numpy_and_pt_says_how_to_install(tmp_path, monkeypatch):
    import sys

    safetensors, _ = _checkpoint(tmp_path, "edsr.safetensors")
    pt, _ = _checkpoint(tmp_path, "edsr.pt")
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now fails, as without the extra
    result = run("import", "edsr", safetensors, "--out", tmp_path / "a.keras", "--json")
    assert result.exit_code == 0, result.output
    check = json.loads(result.stdout)["verification"]
    assert check["reference"].startswith("numpy transcription") and "install edgeprune[torch]" in check["reference"]
    assert check["max_relative_difference"] <= 1e-5
    result = run("import", "edsr", pt, "--out", tmp_path / "b.keras")
    assert result.exit_code == 2 and "pip install 'edgeprune[torch]'" in result.stderr
    assert not (tmp_path / "b.keras").exists()
