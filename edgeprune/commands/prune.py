"""``edgeprune prune``: one-shot pruning (``--one-shot``) or the iterative pipeline, and what the command prints."""

import json

from edgeprune.errors import InvalidArgumentError


def prune(model, out_dir, *, baseline=None, data=None, method: str | None = None, importance: str | None = None,
          target_mac: float | None = 0.8, tolerance_psnr: float = 0.05, tolerance_ssim: float = 0.002,
          preset_name: str = "quick", finetune_steps: int | None = None, max_iterations: int | None = None,
          resume: bool = False, one_shot: bool = False, channel_ratio: float | None = None,
          channel_multiple: int = 1, input_size=None, as_json: bool = False, echo=None) -> str:
    """Runs one-shot pruning or the iterative pipeline as the options ask, and returns what the command prints on
    stdout (the summary, or the report as JSON). ``echo(text)`` receives the iterative run's progress lines."""
    if one_shot:
        if channel_ratio is None:
            raise InvalidArgumentError("--one-shot needs --channel-ratio R with 0 < R < 1")
        if method or importance:
            raise InvalidArgumentError("--method and --importance set the iterative loop: --one-shot ranks by L1 "
                                       "filter norm; drop them or drop --one-shot")
        return _one_shot(model, out_dir, channel_ratio, channel_multiple, input_size, as_json)
    if channel_ratio is not None or channel_multiple != 1 or input_size is not None:
        raise InvalidArgumentError("--channel-ratio, --channel-multiple and --input-size go with --one-shot")
    from edgeprune.commands.render import prune_summary
    from edgeprune.prune.pipeline import prune_run

    result = prune_run(model, out_dir, baseline=baseline, data=data, method=method, importance=importance,
                       target_mac=target_mac, tolerance_psnr=tolerance_psnr, tolerance_ssim=tolerance_ssim,
                       preset_name=preset_name, resume=resume,
                       overrides={"finetune_steps": finetune_steps, "max_iterations": max_iterations},
                       echo=echo, verbose=0 if as_json else 1)
    return json.dumps(result.report) if as_json else prune_summary(result.report, out_dir)


def _one_shot(model, out_dir, channel_ratio, channel_multiple, input_size, as_json) -> str:
    from edgeprune.commands.render import one_shot_summary
    from edgeprune.prune.oneshot import one_shot_prune

    report = one_shot_prune(model, channel_ratio, out_dir, input_size, channel_multiple=channel_multiple)
    if as_json:  # the per-layer tables stay in report.json
        return json.dumps({k: v for k, v in report.items() if k not in ("original", "pruned")} |
                          {"original": {"totals": report["original"]["totals"]},
                           "pruned": {"totals": report["pruned"]["totals"]}})
    return one_shot_summary(report, out_dir)
