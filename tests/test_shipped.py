"""keras_models.shipped: the trained EDSR x2 and SID in the package load only when their file matches the manifest,
measure what the manifest records on the held-out photos, and are what ``edgeprune prune --model edsr|sid`` prunes
(fine-tuning on the photos they learnt from); a damaged file is one line and exit 2, with nothing written."""

import json
import shutil

import pytest
from click.testing import CliRunner

import keras_models.shipped as shipped_module
from edgeprune.cli import cli
from edgeprune.core.errors import InvalidArgumentError, ModelLoadError
from edgeprune.core.modelio import load_shipped
from edgeprune.prune.options import PruneOptions
from edgeprune.prune.pipeline import prepare
from edgeprune.train.fit import load_data, validate
from edgeprune.train.presets import preset
from keras_models.shipped import (MANIFEST_FIELDS, PHOTOS_DIR, SHIPPED, ShippedWeightsError, file_sha256,
                                  shipped_names, verified_weights)


def _copy_weights(tmp_path, name):
    folder = tmp_path / "weights"
    folder.mkdir()
    for suffix in (".keras", ".json"):
        shutil.copyfile(shipped_module.WEIGHTS_DIR / f"{SHIPPED[name]}{suffix}", folder / f"{SHIPPED[name]}{suffix}")
    return folder


def test_edsr_and_sid_are_shipped_with_complete_manifests():
    assert shipped_names() == ["edsr", "sid"]
    for name in shipped_names():
        weights = verified_weights(name)
        manifest = weights.manifest
        assert set(MANIFEST_FIELDS) <= set(manifest) and manifest["model"] == name
        assert manifest["sha256"] == file_sha256(weights.path)
        assert manifest["data"]["files"] and all(len(f["sha256"]) == 64 for f in manifest["data"]["files"])
        assert manifest["recipe"]["steps"] > 0 and manifest["training"]["hours"] > 0
        assert {"cpu", "tensorflow", "tf_keras", "python"} <= set(manifest["training"])
        assert "quick_recipe" in manifest["quality"]
    assert "bicubic" in verified_weights("edsr").manifest["quality"]


@pytest.mark.parametrize("name", ["edsr", "sid"])
def test_a_shipped_model_measures_what_its_manifest_records(name):
    model, weights = load_shipped(name)
    task = name
    _, val = load_data(task, None, preset("quick", task), 2)
    quality = validate(model, val)
    assert quality["psnr"] == pytest.approx(weights.manifest["quality"]["psnr"], abs=1e-3)
    assert quality["ssim"] == pytest.approx(weights.manifest["quality"]["ssim"], abs=1e-4)


def test_the_photo_pack_is_there_and_matches_its_manifest():
    manifest = json.loads((PHOTOS_DIR / "manifest.json").read_text())
    assert len(manifest["crops"]) == len(verified_weights("edsr").manifest["data"]["files"])
    for crop in manifest["crops"]:
        assert file_sha256(PHOTOS_DIR / crop["file"]) == crop["sha256"]


@pytest.mark.parametrize("damage, message", [
    ("flip", "does not match its manifest"),
    ("manifest_gone", "is missing"),
    ("manifest_garbled", "is unreadable"),
    ("other_model", "is not format 1 for 'edsr'"),
])
def test_a_damaged_weight_file_or_manifest_is_refused(tmp_path, damage, message):
    folder = _copy_weights(tmp_path, "edsr")
    weights, manifest = folder / "edsr_x2.keras", folder / "edsr_x2.json"
    if damage == "flip":
        data = bytearray(weights.read_bytes())
        data[len(data) // 2] ^= 0x01
        weights.write_bytes(bytes(data))
    elif damage == "manifest_gone":
        manifest.unlink()
    elif damage == "manifest_garbled":
        manifest.write_text('{"format": 1, "mod')
    else:
        manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "model": "sid"}))
    with pytest.raises(ShippedWeightsError, match=message):
        verified_weights("edsr", folder)
    with pytest.raises(ModelLoadError, match=message):
        load_shipped("edsr", folder)


def test_prune_refuses_a_tampered_shipped_file_in_one_line_and_writes_nothing(tmp_path, monkeypatch):
    folder = _copy_weights(tmp_path, "edsr")
    data = bytearray((folder / "edsr_x2.keras").read_bytes())
    data[-100] ^= 0xFF
    (folder / "edsr_x2.keras").write_bytes(bytes(data))
    monkeypatch.setattr(shipped_module, "WEIGHTS_DIR", folder)
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["prune", "--model", "edsr", "--latency-profile", "none", "--out", str(out)],
                                prog_name="edgeprune")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "edsr_x2.keras' does not match its manifest" in lines[0] and "reinstall" in lines[0]
    assert not out.exists()


def test_prune_of_a_reference_name_prunes_the_shipped_weights_on_their_photos(tmp_path):
    ctx = prepare(PruneOptions("edsr", tmp_path / "run"))
    info = ctx.baseline.info
    assert info["source"] == "shipped" and info["weights"] == "keras_models/weights/edsr_x2.keras"
    assert info["sha256"] == verified_weights("edsr").sha256 and "edsr_x2.keras" in info["description"]
    assert ctx.train_pool.description["kind"] == "photos folder"
    assert ctx.train_pool.description["root"] == str(PHOTOS_DIR)
    assert ctx.val.description["kind"] == "real photos from scikit-image (held out)"
    assert not (tmp_path / "run").exists()
    trained_here = prepare(PruneOptions("edsr", tmp_path / "run", baseline="train"))
    assert trained_here.baseline.model is None and trained_here.train_pool.description["kind"].startswith("dead")


@pytest.mark.parametrize("model, baseline, message", [
    ("edsr_x3", "shipped", "no shipped weights for 'edsr_x3'"),
    ("MODEL_FILE", "shipped", "--baseline shipped goes with a reference --model"),
    ("MODEL_FILE", "train", "--baseline train goes with a reference --model"),
])
def test_baseline_choices_that_do_not_fit_the_model_are_refused(tmp_path, model, baseline, message):
    from keras_models import build_edsr
    from edgeprune.core.modelio import save_model

    if model == "MODEL_FILE":
        model = str(save_model(build_edsr(num_blocks=1, num_features=8), tmp_path / "m.keras"))
    with pytest.raises((InvalidArgumentError, ModelLoadError), match=message):
        prepare(PruneOptions(model, tmp_path / "run", baseline=baseline))
