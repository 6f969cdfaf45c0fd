"""``edgeprune prune``: one-shot pruning (``--one-shot``) or the iterative pipeline, what it prunes for (a latency
profile, this host's by default, or a channel multiple), and what the command prints."""

import json
from functools import partial

from edgeprune.core.checks import integer_at_least
from edgeprune.core.errors import InvalidArgumentError

HOST, NONE = "host", "none"


def prune(model, out_dir, *, baseline=None, data=None, method: str | None = None, importance: str | None = None,
          target_mac: float | None = None, tolerance_psnr: float = 0.05, tolerance_ssim: float = 0.002,
          preset_name: str = "quick", finetune_steps: int | None = None, max_iterations: int | None = None,
          resume: bool = False, one_shot: bool = False, channel_ratio: float | None = None,
          channel_multiple: int = 1, input_size=None, as_json: bool = False, echo=None,
          latency_profile: str | None = None, target_latency: float | None = None,
          num_threads: int | None = None, progress=None, strategy: str = "threshold",
          granularity: str | None = None, candidates: int | None = None, gate: str = "baseline",
          seed: int | None = None, recover_steps: int | None = None) -> str:
    """Runs one-shot pruning or the iterative pipeline as the options ask, and returns what the command prints on
    stdout (the summary, or the report as JSON). ``echo(text)`` receives the iterative run's progress lines.

    ``latency_profile``: a profile file, ``"host"`` (this machine, calibrated once and cached) or ``"none"``; left
    out, the loop prunes for the host unless ``channel_multiple`` is given, and one-shot pruning for no device.
    ``target_mac`` left out is 0.8 unless ``target_latency`` is given."""
    if num_threads is not None:
        integer_at_least("--num-threads", num_threads)
    integer_at_least("channel multiple", channel_multiple)
    if latency_profile not in (None, NONE) and channel_multiple != 1:
        raise InvalidArgumentError("--channel-multiple and --latency-profile both choose the widths: give one")
    if strategy != "coarse" and (granularity is not None or candidates is not None):
        raise InvalidArgumentError("--granularity and --candidates set the coarse search: add --strategy coarse or "
                                   "drop them")
    if candidates is not None:
        integer_at_least("--candidates", candidates)
    if one_shot:
        if strategy != "threshold":
            raise InvalidArgumentError("--one-shot prunes by L1 filter norm without data: drop --strategy, or drop "
                                       "--one-shot (--strategy qr is the data-driven one-shot)")
        if channel_ratio is None:
            raise InvalidArgumentError("--one-shot needs --channel-ratio R with 0 < R < 1")
        if method or importance:
            raise InvalidArgumentError("--method and --importance set the iterative loop: --one-shot ranks by L1 "
                                       "filter norm; drop them or drop --one-shot")
        if target_latency is not None or target_mac is not None:
            raise InvalidArgumentError("--target-mac and --target-latency stop the iterative loop: --one-shot "
                                       "removes --channel-ratio of every group")
        if gate != "baseline":
            raise InvalidArgumentError("--gate judges the iterative loop's steps: --one-shot has no gate; drop one")
        if seed is not None:
            raise InvalidArgumentError("--one-shot ranks by L1 filter norm and draws nothing: drop --seed")
        if recover_steps is not None:
            raise InvalidArgumentError("--recover-steps fine-tunes the QR strategy's reconstruction: --one-shot "
                                       "does not train; drop one")
        profile, source = _profile(latency_profile or NONE, num_threads, echo, progress)
        return _one_shot(model, out_dir, channel_ratio, channel_multiple, input_size, as_json, profile, source)
    if channel_ratio is not None or input_size is not None:
        raise InvalidArgumentError("--channel-ratio and --input-size go with --one-shot")
    from edgeprune.commands.render import prune_summary
    from edgeprune.deploy.host_profile import measure_host_latency
    from edgeprune.prune.coarse import CANDIDATES
    from edgeprune.prune.pipeline import Hardware, prune_run

    spec = latency_profile or (NONE if channel_multiple != 1 else HOST)
    threads = num_threads
    profile, source, load = None, None, None
    if spec == HOST:
        threads = threads or 1
        load = partial(_profile, HOST, threads, echo, progress)
    elif spec != NONE:
        profile, source = _profile(spec, num_threads, echo, progress)
        threads = profile.num_threads
    hardware = Hardware(profile=profile, profile_source=source, load_profile=load, channel_multiple=channel_multiple,
                        measure=partial(measure_host_latency, num_threads=threads or 1))
    if target_mac is None and target_latency is None:
        target_mac = 0.8
    result = prune_run(model, out_dir, baseline=baseline, data=data, method=method, importance=importance,
                       target_mac=target_mac, tolerance_psnr=tolerance_psnr, tolerance_ssim=tolerance_ssim,
                       preset_name=preset_name, resume=resume,
                       overrides={"finetune_steps": finetune_steps, "max_iterations": max_iterations,
                                  "seed": seed},
                       echo=echo, verbose=0 if as_json else 1, target_latency=target_latency, hardware=hardware,
                       strategy=strategy, granularity=granularity or "both",
                       candidates=CANDIDATES if candidates is None else candidates, gate=gate,
                       recover_steps=0 if recover_steps is None else recover_steps)
    return json.dumps(result.report) if as_json else prune_summary(result.report, out_dir)


def _profile(spec: str, num_threads: int | None, echo, progress):
    """(profile, source) for ``--latency-profile``: none, this host's (cached), or a file's."""
    if spec == NONE:
        return None, None
    from edgeprune.deploy import host_profile

    if spec == HOST:
        if progress is None and echo is not None:
            def progress(done, total):
                if done % 50 == 0 or done == total:
                    echo(f"  {done}/{total} single-layer models converted")
        return host_profile.host_profile(num_threads or 1, echo=echo, progress=progress)
    return host_profile.pruning_profile(spec, num_threads)


def _one_shot(model, out_dir, channel_ratio, channel_multiple, input_size, as_json, profile=None,
              source=None) -> str:
    from edgeprune.commands.render import one_shot_summary
    from edgeprune.prune.oneshot import one_shot_prune

    report = one_shot_prune(model, channel_ratio, out_dir, input_size, channel_multiple=channel_multiple,
                            profile=profile, profile_source=source)
    if as_json:  # the per-layer tables stay in report.json
        return json.dumps({k: v for k, v in report.items() if k not in ("original", "pruned")} |
                          {"original": {"totals": report["original"]["totals"]},
                           "pruned": {"totals": report["pruned"]["totals"]}})
    return one_shot_summary(report, out_dir)
