"""The prune pipeline end to end on tiny models: what is written, that the saved model measures what the report
says, the equal-budget control, the baseline cache, resume, and bad input (clear errors, nothing written)."""

import json

import numpy as np
import pytest
from PIL import Image

from edgeprune.core.errors import InvalidArgumentError, ModelLoadError
from edgeprune.core.modelio import load_model, save_model
from edgeprune.prune.options import PruneOptions
from edgeprune.prune.pipeline import OUTPUT_FILES, prune_command
from edgeprune.train.fit import load_data, validate
from keras_models import build_edsr, build_sid

TINY = {"finetune_steps": 3, "train_images": 4, "train_size": 64, "val_side": 64, "batch_size": 4, "patch": 16,
        "max_iterations": 3, "steps": 4}


def _tiny_file(tmp_path, name="tiny.keras"):
    return save_model(build_edsr(scale=2, num_blocks=2, num_features=8), tmp_path / name)


def _hr_folder(folder, count=12, size=(48, 40), seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(folder / f"{i:04d}.png")
    return folder


def test_outputs_and_the_saved_model_measures_what_the_report_says(tmp_path):
    out = tmp_path / "run"
    lines = []
    report = prune_command(str(_tiny_file(tmp_path)), out, target_mac=0.85, tolerance_psnr=5.0, tolerance_ssim=1.0,
                           overrides=TINY, echo=lines.append, verbose=0)
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)  # the work folder is gone
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk["pruned"] == report["pruned"] and set(on_disk) >= {"baseline", "pruned", "control", "iterations",
                                                                      "data"}
    assert set(on_disk["iterations"][0]) >= {"threshold", "step", "mac", "psnr", "ssim", "accepted"}
    assert on_disk["data"]["validation"]["kind"] == "real photos from scikit-image (held out)"
    pruned = load_model(out / "pruned.keras")
    _, val = load_data("edsr", None, {**TINY}, 2)
    measured = validate(pruned, val)
    assert measured["psnr"] == pytest.approx(report["pruned"]["psnr"], abs=1e-5)
    assert measured["ssim"] == pytest.approx(report["pruned"]["ssim"], abs=1e-6)
    # the masked model the loop accepted and the slim model compute the same thing
    assert report["pruned"]["masked_psnr"] == pytest.approx(report["pruned"]["psnr"], abs=1e-4)
    # physically slim, as the plan says, and the cost is the slim file's own
    plan = json.loads((out / "plan.json").read_text())
    for entry in report["layers"]:
        assert pruned.get_layer(entry["layer"]).output.shape[-1] == entry["pruned"]
    assert report["target_met"] and report["pruned"]["mac_ratio"] <= 0.85
    assert sum(len(g["keep"]) for g in plan["groups"].values()) < sum(g["size"] for g in plan["groups"].values())
    # the control had exactly the fine-tuning the pruned model's accepted history had
    lineage = sum(r["finetune_steps"] for r in report["iterations"] if r["accepted"])
    assert report["control"]["steps"] == report["finetune_steps"]["lineage"] == lineage > 0
    assert any(line.startswith("iteration  1: level 0.100") for line in lines)
    # where the time went: every phase, the loop's own beside it, and they add up to no more than the run
    phases = report["timings"]["phases"]
    assert {"prepare", "prepare.data", "baseline", "baseline_validate", "loop", "loop.importance", "loop.finetune",
            "loop.validate", "loop.checkpoint", "slim", "pruned_validate", "control", "latency"} <= set(phases)
    assert phases["loop.finetune"]["count"] == sum(r["finetune_steps"] > 0 for r in report["iterations"])
    inner = sum(e["seconds"] for n, e in phases.items() if n.startswith("loop."))
    assert inner <= phases["loop"]["seconds"] + 0.01
    assert sum(e["seconds"] for n, e in phases.items() if "." not in n) <= report["timings"]["total_seconds"] + 0.01
    for png in ("channels.png", "tradeoff.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_reference_model_gets_a_baseline_trained_once_then_cached(tmp_path, monkeypatch):
    from keras_models import registry

    tiny = registry.ReferenceModel("tiny_edsr", "test", build_edsr, {"num_blocks": 1, "num_features": 8},
                                   (32, 32))
    monkeypatch.setitem(registry.REFERENCE_MODELS, "tiny_edsr", tiny)
    out = tmp_path / "run"
    lines = []
    first = prune_command("tiny_edsr", out, tolerance_psnr=5.0, tolerance_ssim=1.0, overrides=TINY,
                          echo=lines.append, verbose=0)
    assert "training the baseline: 4 steps of batch 4 (16-pixel patches)" in lines
    assert (out / "baseline.keras").exists() and first["baseline"]["source"] == "trained here"
    assert first["input_size"] == [32, 32]
    lines.clear()
    second = prune_command("tiny_edsr", out, tolerance_psnr=5.0, tolerance_ssim=1.0, overrides=TINY,
                           echo=lines.append, verbose=0)
    assert any(line.startswith("using the cached baseline") for line in lines)
    assert second["baseline"]["psnr"] == first["baseline"]["psnr"]
    with pytest.raises(InvalidArgumentError, match="was trained with other settings"):
        prune_command("tiny_edsr", out, overrides={**TINY, "steps": 5}, verbose=0)


def test_resume_continues_an_interrupted_run(tmp_path):
    out = tmp_path / "run"
    model = str(_tiny_file(tmp_path))
    kwargs = dict(target_mac=0.5, tolerance_psnr=5.0, tolerance_ssim=1.0, overrides={**TINY, "max_iterations": 4},
                  verbose=0)

    def stop_at_second(line):
        if line.startswith("iteration  2"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prune_command(model, out, echo=stop_at_second, **kwargs)
    saved = json.loads((out / ".work" / "loop" / "loop.json").read_text())
    assert len(saved["iterations"]) == 2 and not (out / "report.json").exists()
    with pytest.raises(InvalidArgumentError, match="holds an unfinished run: add --resume"):
        prune_command(model, out, **kwargs)
    with pytest.raises(InvalidArgumentError, match="was started with other options"):
        prune_command(model, out, resume=True, **{**kwargs, "target_mac": 0.6})
    report = prune_command(model, out, resume=True, **kwargs)
    assert report["iterations"][:2] == saved["iterations"]


def _sid_file(tmp_path):
    widths = (4, 8, 8, 8, 8)
    return save_model(build_sid(features=widths), tmp_path / "sid.keras")


@pytest.mark.parametrize("case, message", [
    ("target", "target MAC must be strictly between 0 and 1 (a fraction of the baseline), got 1.5"),
    ("target0", "target MAC must be strictly between 0 and 1 (a fraction of the baseline), got 0"),
    ("other_arch", "is not a trained 'edsr' model"),
    ("not_a_model", "is not a valid .keras archive"),
    ("empty", "has no images to train on and validate with"),
    ("missing", "does not exist"),
    ("a_file", "is a file: give a folder of HR images"),
    ("small", "no usable training image"),
    ("tolerance", "the PSNR tolerance must be a number >= 0"),
    ("out_is_file", "is a file: give a folder"),
])
def test_bad_input_is_refused_before_anything_is_written(tmp_path, case, message):
    out = tmp_path / "run"
    kwargs = {"overrides": TINY, "verbose": 0}
    model = "edsr"
    if case == "target":
        kwargs["target_mac"] = 1.5
    elif case == "target0":
        kwargs["target_mac"] = 0
    elif case == "other_arch":
        kwargs["baseline"] = str(_sid_file(tmp_path))
    elif case == "not_a_model":
        (tmp_path / "bad.keras").write_bytes(b"not a zip")
        kwargs["baseline"] = str(tmp_path / "bad.keras")
    elif case == "empty":
        (tmp_path / "data").mkdir()
        kwargs["data"] = tmp_path / "data"
    elif case == "missing":
        kwargs["data"] = tmp_path / "nothing"
    elif case == "a_file":
        (tmp_path / "data.png").write_bytes(b"x")
        kwargs["data"] = tmp_path / "data.png"
    elif case == "small":
        kwargs["data"] = _hr_folder(tmp_path / "data", size=(20, 20))
        model = str(_tiny_file(tmp_path))
    elif case == "tolerance":
        kwargs["tolerance_psnr"] = -1
    elif case == "out_is_file":
        out.write_text("x")
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises((InvalidArgumentError, ModelLoadError), match=message.replace("(", r"\(").replace(")", r"\)")):
        prune_command(model, out, **kwargs)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_corrupt_and_small_images_in_a_folder_are_skipped_and_counted(tmp_path):
    data = _hr_folder(tmp_path / "data", count=14)
    (data / "0003.png").write_bytes(b"corrupt")
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(data / "0005.png")
    report = prune_command(str(_tiny_file(tmp_path)), tmp_path / "run", data=data, tolerance_psnr=5.0,
                           tolerance_ssim=1.0, overrides=TINY, verbose=0)
    assert report["data"]["train"]["skipped"] == {"unreadable": 1, "smaller than a patch": 1}
    assert report["data"]["train"]["images"] == 10  # 14 files, 2 held out for validation, 2 skipped


@pytest.mark.parametrize("where, content, message", [
    ("baseline.json", '{"key": {"model": "edsr", "pre', "cached baseline record '.*baseline.json' is not valid JSON"),
    ("baseline.json", '["key"]', "cached baseline record '.*' holds a JSON list, not a JSON object"),
    ("baseline.json", '{"config": {}}', "cached baseline record '.*' lacks 'key'"),
    (".work/run.json", '{"model": "edsr", "baseline": nu', "run record '.*run.json' is not valid JSON"),
    (".work/run.json", '"edsr"', "run record '.*' holds a JSON str, not a JSON object"),
    (".work/loop/loop.json", "\x00\x00\x00", "prune loop checkpoint '.*loop.json' is not valid JSON"),
    (".work/loop/loop.json", '{"format": "edgeprune.plan"}', "is not an edgeprune loop checkpoint of this version"),
])
def test_a_corrupt_or_foreign_cache_file_is_refused_before_anything_is_written(tmp_path, where, content, message):
    from edgeprune.core.errors import FileFormatError

    out = tmp_path / "run"
    (out / where).parent.mkdir(parents=True, exist_ok=True)
    (out / where).write_text(content)
    (out / "baseline.keras").write_bytes(b"")  # a cached baseline beside its record
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    with pytest.raises(FileFormatError, match=message):
        prune_command("edsr", out, baseline="train", resume=where.startswith(".work"), overrides=TINY, verbose=0)
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before


def _chain_with_a_cached_answer(tmp_path, monkeypatch, content: str):
    """A control chain whose cached answer at 4 steps (one chunk) holds ``content``."""
    from edgeprune.prune.control import ControlChain
    from edgeprune.train.fit import TrainConfig
    from test_fit import tiny_pool

    monkeypatch.setenv("EDGEPRUNE_CACHE_DIR", str(tmp_path / "cache"))
    chain = ControlChain(build_edsr(num_blocks=1, num_features=8), tiny_pool(), tiny_pool(n=2),
                         TrainConfig(steps=4, batch_size=2, patch=8))
    chain.quality_path(1).parent.mkdir(parents=True)
    chain.quality_path(1).write_text(content)
    return chain


def test_a_corrupt_control_cache_is_a_clear_error(tmp_path, monkeypatch):
    from edgeprune.core.errors import FileFormatError

    chain = _chain_with_a_cached_answer(tmp_path, monkeypatch, '{"steps": 4, "psnr": 3')
    with pytest.raises(FileFormatError, match="cached control '.*chain-.*-1.json' is not valid JSON"):
        chain(4)


@pytest.mark.parametrize("content, message", [
    ('{"steps": 4}', "cached control '.*-1.json' lacks 'psnr', 'ssim'"),
    ('{"steps": 4, "psnr": "31.2", "ssim": 0.9}', "cached control '.*-1.json': field 'psnr' is '31.2'"),
    ('{"steps": 4, "psnr": 31.2, "ssim": null}', "cached control '.*-1.json': field 'ssim' is None"),
])
def test_a_control_cache_without_its_quality_is_a_clear_error(tmp_path, monkeypatch, content, message):
    from edgeprune.core.errors import FileFormatError

    chain = _chain_with_a_cached_answer(tmp_path, monkeypatch, content)
    with pytest.raises(FileFormatError, match=message):
        chain(4)


def test_the_result_carries_the_slim_model_beside_a_json_only_report(tmp_path, monkeypatch):
    from edgeprune.graph import coupling as coupling_module
    from edgeprune.prune import pipeline

    built = []
    original = coupling_module.Coupling.__init__

    def counting(self, model_or_graph):
        built.append(getattr(model_or_graph, "name", type(model_or_graph).__name__))
        original(self, model_or_graph)

    monkeypatch.setattr(coupling_module.Coupling, "__init__", counting)
    result = pipeline.prune_run(PruneOptions(str(_tiny_file(tmp_path)), tmp_path / "run", target_mac=0.85,
                                             tolerance_psnr=5.0, tolerance_ssim=1.0,
                                             overrides={**TINY, "max_iterations": 1}), verbose=0)
    json.dumps(result.report)  # nothing but JSON in it
    assert "_slim_model" not in result.report
    assert result.slim_model.count_params() < load_model(_tiny_file(tmp_path, "again.keras")).count_params()
    assert result.plan.to_dict() == json.loads((tmp_path / "run" / "plan.json").read_text())
    # one coupling for the model (option checks, scale, data) and one for the loop's copy (scores, costs,
    # surgery, the report's groups); before, six were built
    assert len(built) == 2, built


def test_the_report_says_what_the_widths_were_chosen_for_and_measures_latency(tmp_path):
    from conftest import TEST_HOST_PROFILE
    from edgeprune.commands.render import prune_summary
    from edgeprune.deploy.host_profile import measure_host_latency
    from edgeprune.graph.cost import model_cost
    from edgeprune.graph.latency_profile import LatencyProfile, predict_report
    from edgeprune.prune.pipeline import Hardware

    profile = LatencyProfile(**TEST_HOST_PROFILE)
    calls = []

    def measure(models, size, calib_samples=None):
        calls.append(size)
        return measure_host_latency(models, size, rounds=3)

    hardware = Hardware(profile=profile, profile_source="a test phone", measure=measure)
    out = tmp_path / "run"
    report = prune_command(str(_tiny_file(tmp_path)), out, target_mac=None, target_latency=0.9, tolerance_psnr=5.0,
                           tolerance_ssim=1.0, overrides=TINY, verbose=0, hardware=hardware)
    latency = report["latency"]
    assert latency["widths_for"].startswith("a test phone: conv output tiles of 4")
    assert latency["profile"]["source"] == "a test phone" and latency["profile"]["channel_tile"] == 4
    assert latency["input_size"] == [32, 32] and calls == [(32, 32)]  # the validation inputs' size (64 / 2)
    pruned = load_model(out / "pruned.keras")
    base_us = predict_report(profile, model_cost(load_model(_tiny_file(tmp_path, "again.keras")), (32, 32)))["total_us"]
    predicted = latency["predicted"]
    assert predicted["baseline_us"] == pytest.approx(base_us)
    assert predicted["pruned_us"] == pytest.approx(predict_report(profile, model_cost(pruned, (32, 32)))["total_us"])
    assert predicted["ratio"] <= 0.9 and report["target_met"] and report["settings"]["target_latency"] == 0.9
    measured = latency["measured"]
    assert measured["ratio"] == pytest.approx(measured["pruned_us"] / measured["baseline_us"])
    assert measured["num_threads"] == 1 and measured["rounds"] == 3 and latency["mac_ratio"] < 1
    for entry in report["layers"]:  # every pruned conv keeps whole tiles of 4
        assert entry["pruned"] % 4 == 0 or entry["pruned"] == entry["original"], entry
    assert all("latency" in r for r in report["iterations"])
    text = prune_summary(report, out)
    assert "widths chosen for: a test phone" in text and "latency, measured" in text
    assert "target latency 0.9 (predicted) met" in text


@pytest.mark.parametrize("strategy, extra", [("coarse", {"granularity": "both", "candidates": 2}), ("qr", {})])
def test_the_seed_strategies_write_the_same_outputs_and_measure_what_they_say(tmp_path, strategy, extra):
    from edgeprune.prune.pipeline import KERNEL_MASK_FILE

    out = tmp_path / "run"
    lines = []
    report = prune_command(str(_tiny_file(tmp_path)), out, target_mac=0.7, tolerance_psnr=5.0, tolerance_ssim=1.0,
                           overrides=TINY, echo=lines.append, verbose=0, strategy=strategy, **extra)
    names = sorted(p.name for p in out.iterdir())
    assert report["strategy"]["name"] == strategy and report["target_met"]
    pruned = load_model(out / "pruned.keras")
    _, val = load_data("edsr", None, {**TINY}, 2)
    measured = validate(pruned, val)
    assert measured["psnr"] == pytest.approx(report["pruned"]["psnr"], abs=1e-5)
    assert report["pruned"]["masked_psnr"] == pytest.approx(report["pruned"]["psnr"], abs=1e-4)
    for entry in report["layers"]:
        assert pruned.get_layer(entry["layer"]).output.shape[-1] == entry["pruned"]
    if strategy == "coarse":
        s = report["strategy"]
        assert s["sparse_mac_ratio"] <= 0.7 + 1e-9 and s["executed_mac_ratio"] == report["pruned"]["mac_ratio"]
        assert s["sparse_mac_ratio"] <= s["executed_mac_ratio"]
        assert all(len(r["search"]["candidate_losses"]) == 2 for r in report["iterations"])
        assert names == sorted(OUTPUT_FILES + ((KERNEL_MASK_FILE,) if s["pruned_kernels"] else ()))
        assert any("mask " in line and "(executed " in line for line in lines)
    else:  # one record, no fine-tuning: the control is the baseline itself
        assert names == sorted(OUTPUT_FILES) and len(report["iterations"]) == 1
        assert report["pruned"]["mac_ratio"] <= 0.7 and report["control"]["steps"] == 0
        assert report["control"]["psnr"] == pytest.approx(report["baseline"]["psnr"])
        fits = [c for g in report["strategy"]["reconstruction"].values() for c in g["consumers"].values()
                if c["refit"]]
        assert fits and all(c["error_after"] <= c["error_before"] for c in fits)
        assert any(line.startswith("iteration  1:") and "one-shot" in line for line in lines)


def test_qr_with_recover_steps_fine_tunes_the_same_selection_and_its_control_has_as_many_steps(tmp_path,
                                                                                                 monkeypatch):
    from edgeprune.prune.pipeline import Hardware

    monkeypatch.setenv("EDGEPRUNE_CACHE_DIR", str(tmp_path / "cache"))
    model = str(_tiny_file(tmp_path))
    kwargs = dict(target_mac=0.7, tolerance_psnr=5.0, tolerance_ssim=1.0, overrides=TINY, verbose=0, strategy="qr",
                  hardware=Hardware(channel_multiple=4))
    lines = []
    plain = prune_command(model, tmp_path / "plain", **kwargs)
    tuned = prune_command(model, tmp_path / "tuned", recover_steps=3, echo=lines.append, **kwargs)
    record = tuned["iterations"][0]
    assert record["finetune_steps"] == 3 and "fine-tuned for 3 steps" in record["note"]
    assert tuned["control"]["steps"] == tuned["finetune_steps"]["lineage"] == 3 and plain["control"]["steps"] == 0
    assert tuned["strategy"]["recover_steps"] == 3 and plain["strategy"]["recover_steps"] == 0
    assert any("then 3 fine-tuning steps" in line for line in lines)
    # fine-tuning comes after the selection: the same channels are kept, and it changed the weights
    plans = [json.loads((tmp_path / d / "plan.json").read_text())["groups"] for d in ("plain", "tuned")]
    assert plans[0] == plans[1]
    assert tuned["pruned"]["psnr"] != pytest.approx(plain["pruned"]["psnr"], abs=1e-6)
    measured = validate(load_model(tmp_path / "tuned" / "pruned.keras"), load_data("edsr", None, {**TINY}, 2)[1])
    assert measured["psnr"] == pytest.approx(tuned["pruned"]["psnr"], abs=1e-5)
    # widths in multiples of 4 of 8: the plan just above the target is reported beside the one that met it
    missed = tuned["strategy"]["missed_plan"]
    assert missed["mac"] > 0.7 >= tuned["pruned"]["mac_ratio"]
    assert all(e["pruned"] % 4 == 0 or e["pruned"] == e["original"] for e in tuned["layers"])


@pytest.mark.parametrize("kwargs, message", [
    ({"strategy": "random"}, "--strategy must be one of threshold, coarse, qr, got 'random'"),
    ({"strategy": "coarse", "importance": "taylor"}, "--importance ranks channels for the threshold strategy"),
    ({"strategy": "qr", "resume": True}, "there is nothing to --resume"),
    ({"strategy": "coarse", "candidates": 0}, "--candidates must be an integer >= 1, got 0"),
    ({"strategy": "coarse", "granularity": "rows"}, "granularity must be one of channel, kernel, both"),
    ({"recover_steps": 5}, "--recover-steps fine-tunes the QR strategy's reconstruction: add --strategy qr"),
    ({"strategy": "qr", "recover_steps": -1}, "--recover-steps must be an integer >= 0, got -1"),
])
def test_bad_strategy_options_are_refused_before_anything_is_written(tmp_path, kwargs, message):
    out = tmp_path / "run"
    with pytest.raises(InvalidArgumentError, match=message.replace("(", r"\(").replace(")", r"\)")):
        prune_command(str(_tiny_file(tmp_path)), out, overrides=TINY, verbose=0, **kwargs)
    assert not out.exists()


def test_a_second_run_on_the_same_baseline_reuses_the_control_and_another_baseline_does_not(tmp_path, monkeypatch):
    from edgeprune.prune import pipeline

    monkeypatch.setenv("EDGEPRUNE_CACHE_DIR", str(tmp_path / "cache"))
    model = str(_tiny_file(tmp_path))
    kwargs = dict(target_mac=0.85, tolerance_psnr=5.0, tolerance_ssim=1.0, overrides=TINY, verbose=0)
    first = prune_command(model, tmp_path / "a", method="A", **kwargs)
    steps = first["control"]["steps"]
    assert steps > 0 and "cached" not in first["control"]
    assert len(list((tmp_path / "cache" / "controls").glob("*.json"))) == 1
    fits = []
    real_fit = pipeline.fit
    monkeypatch.setattr(pipeline, "fit", lambda *a, **k: fits.append(a[2].steps) or real_fit(*a, **k))
    lines = []
    second = prune_command(model, tmp_path / "b", method="D", echo=lines.append, **kwargs)
    assert second["control"]["steps"] == steps and steps not in fits  # the loop fine-tunes, the control does not
    assert {k: second["control"][k] for k in ("psnr", "ssim")} == {k: first["control"][k] for k in ("psnr", "ssim")}
    assert second["control"]["cached"].endswith(".json")
    assert any(line.startswith(f"control: the unpruned baseline fine-tuned for the same {steps} steps, from the "
                               "cache") for line in lines)
    # other weights: another key, trained afresh
    other = build_edsr(scale=2, num_blocks=2, num_features=8)
    other.set_weights([w * 0.5 for w in other.get_weights()])
    third = prune_command(str(save_model(other, tmp_path / "other.keras")), tmp_path / "c", method="A", **kwargs)
    assert "cached" not in third["control"]
    assert len(list((tmp_path / "cache" / "controls").glob("*.json"))) == 2


def test_the_control_gate_judges_every_step_against_the_control_and_the_final_control_is_the_gates(tmp_path,
                                                                                                     monkeypatch):
    from edgeprune.commands.render import prune_summary

    monkeypatch.setenv("EDGEPRUNE_CACHE_DIR", str(tmp_path / "cache"))
    lines = []
    report = prune_command(str(_tiny_file(tmp_path)), tmp_path / "run", target_mac=0.85, tolerance_psnr=5.0,
                           tolerance_ssim=1.0, overrides=TINY, verbose=0, gate="control", echo=lines.append)
    assert report["settings"]["gate"] == "control"
    judged = [r for r in report["iterations"] if r.get("control")]
    assert judged and all(r["control"]["steps"] == sum(
        x["finetune_steps"] for x in report["iterations"][:i + 1] if x["accepted"] or x is r)
        for i, r in enumerate(report["iterations"]) if r.get("control"))
    last = [r for r in report["iterations"] if r["accepted"] and r["finetune_steps"]][-1]
    # the final equal-budget control is the gate's control at the accepted budget: trained once, then from the cache
    assert report["control"]["steps"] == last["control"]["steps"] and report["control"]["cached"]
    assert report["control"]["psnr"] == last["control"]["psnr"]
    assert "loop.control" in report["timings"]["phases"]
    assert any(line.startswith("gate: the control at this iteration's budget: fine-tuning the unpruned baseline")
               for line in lines)
    assert any("vs control@" in line for line in lines if line.startswith("iteration"))
    assert "gate: every iteration within the tolerance of the baseline and of the control at its own steps" in \
        prune_summary(report, tmp_path / "run")


def test_a_seed_changes_the_runs_draws_and_the_same_seed_repeats_them(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEPRUNE_CACHE_DIR", str(tmp_path / "cache"))
    model = str(_tiny_file(tmp_path))
    kwargs = dict(method="A", target_mac=0.85, tolerance_psnr=5.0, tolerance_ssim=1.0, verbose=0)
    default = prune_command(model, tmp_path / "a", overrides=TINY, **kwargs)
    one = prune_command(model, tmp_path / "b", overrides={**TINY, "seed": 1}, **kwargs)
    again = prune_command(model, tmp_path / "c", overrides={**TINY, "seed": 1}, **kwargs)
    assert "seed" not in default["preset"] and one["preset"]["seed"] == 1
    # another seed: other fine-tuning patches in the loop and in the control (its own cache entry)
    assert one["pruned"]["masked_psnr"] != default["pruned"]["masked_psnr"]
    assert one["control"]["psnr"] != default["control"]["psnr"]
    assert len(list((tmp_path / "cache" / "controls").glob("*.json"))) == 2
    # the same seed: the same run
    assert [r["psnr"] for r in again["iterations"]] == [r["psnr"] for r in one["iterations"]]
    assert again["pruned"]["psnr"] == one["pruned"]["psnr"]


def test_distillation_weight_zero_is_the_ground_truth_run_and_the_report_says_what_was_learned_from(tmp_path,
                                                                                                   monkeypatch):
    monkeypatch.setenv("EDGEPRUNE_CACHE_DIR", str(tmp_path / "cache"))
    model = str(_tiny_file(tmp_path))
    kwargs = dict(target_mac=0.85, tolerance_psnr=5.0, tolerance_ssim=1.0, overrides=TINY, verbose=0)
    plain = prune_command(model, tmp_path / "plain", **kwargs)
    zero = prune_command(model, tmp_path / "zero", distill=0.0, **kwargs)
    lines = []
    taught = prune_command(model, tmp_path / "taught", distill=2.0, echo=lines.append, **kwargs)
    assert plain["fine_tuned_against"]["text"] == "ground truth" and "distill" not in plain["settings"]
    assert zero["fine_tuned_against"]["text"] == "ground truth + teacher output at weight 0"
    assert taught["fine_tuned_against"] == {"text": "ground truth + teacher output at weight 2", "ground_truth": True,
                                            "teacher": "the unpruned baseline's output (L1)", "weight": 2.0}
    assert taught["settings"]["distill"] == 2.0
    # weight 0: every decision and figure of the run without distillation, bit for bit
    for key in ("psnr", "ssim", "mac_ratio"):
        assert zero["pruned"][key] == plain["pruned"][key]
    assert [r["psnr"] for r in zero["iterations"]] == [r["psnr"] for r in plain["iterations"]]
    # the teacher's term changed the fine-tuning; the control (ground truth alone, same steps) did not change
    assert [r["psnr"] for r in taught["iterations"]] != [r["psnr"] for r in plain["iterations"]]
    if taught["control"]["steps"] == plain["control"]["steps"]:
        assert taught["control"]["psnr"] == plain["control"]["psnr"]
    assert any(line.startswith("pruned: ") and line.endswith("fine-tuned against ground truth + teacher output at "
                                                             "weight 2") for line in lines)
    from edgeprune.commands.render import prune_summary

    assert "fine-tuned against: ground truth + teacher output at weight 2 (the control: ground truth)" in \
        prune_summary({**taught, "seconds": 1.0}, "out")


def test_qr_recovery_distils_from_the_baseline(tmp_path, monkeypatch):
    from edgeprune.prune.pipeline import Hardware

    monkeypatch.setenv("EDGEPRUNE_CACHE_DIR", str(tmp_path / "cache"))
    model = str(_tiny_file(tmp_path))
    kwargs = dict(target_mac=0.7, tolerance_psnr=5.0, tolerance_ssim=1.0, overrides=TINY, verbose=0, strategy="qr",
                  hardware=Hardware(channel_multiple=4), recover_steps=3)
    tuned = prune_command(model, tmp_path / "tuned", **kwargs)
    taught = prune_command(model, tmp_path / "taught", distill=1.0, **kwargs)
    untrained = prune_command(model, tmp_path / "none", **{**kwargs, "recover_steps": 0})
    assert untrained["fine_tuned_against"]["text"] == "nothing (not fine-tuned)"
    assert tuned["fine_tuned_against"]["text"] == "ground truth"
    assert taught["fine_tuned_against"]["text"] == "ground truth + teacher output at weight 1"
    assert taught["pruned"]["psnr"] != tuned["pruned"]["psnr"]
    # the same control: the baseline on the ground truth for 3 steps (the second run finds it in the cache)
    assert [taught["control"][k] for k in ("steps", "psnr", "ssim")] == [tuned["control"][k]
                                                                         for k in ("steps", "psnr", "ssim")]
