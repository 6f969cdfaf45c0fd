"""``edgeprune prune``: one-shot pruning (``--one-shot``) or the iterative pipeline, what it prunes for (a latency
profile, this host's by default, or a channel multiple), and what the command prints. Every option arrives checked,
in one :class:`~edgeprune.prune.options.PruneOptions`."""

import json
from functools import partial

from edgeprune.prune.options import HOST, NONE, PruneOptions


def prune(options: PruneOptions, echo=None, progress=None) -> str:
    """Runs one-shot pruning or the iterative pipeline as ``options`` ask, and returns what the command prints on
    stdout (the summary, or the report as JSON). ``echo(text)`` receives the iterative run's progress lines;
    ``progress(done, total)`` the host calibration's."""
    if options.one_shot:
        profile, source = _profile(options.profile_spec, options.num_threads, echo, progress)
        return _one_shot(options, profile, source)
    from edgeprune.commands.render import prune_summary
    from edgeprune.deploy.host_profile import measure_host_latency
    from edgeprune.prune.pipeline import Hardware, prune_run

    spec, threads, dtype = options.profile_spec, options.num_threads, options.deploy_dtype
    profile, source, load = None, None, None
    if spec == HOST:
        threads, dtype = threads or 1, dtype or "fp32"
        load = partial(_profile, HOST, threads, echo, progress, dtype)
    elif spec != NONE:
        profile, source = _profile(spec, threads, echo, progress, dtype)
        threads, dtype = profile.num_threads, profile.dtype
    dtype = dtype or "fp32"
    hardware = Hardware(profile=profile, profile_source=source, load_profile=load,
                        channel_multiple=options.channel_multiple, dtype=dtype,
                        measure=partial(measure_host_latency, num_threads=threads or 1,
                                        quantize={"fp32": "none"}.get(dtype, dtype)))
    result = prune_run(options, hardware, echo=echo, verbose=0 if options.as_json else 1)
    return json.dumps(result.report) if options.as_json else prune_summary(result.report, options.out_dir)


def _profile(spec: str, num_threads: int | None, echo, progress, dtype: str | None = None):
    """(profile, source) for ``--latency-profile``: none, this host's for ``dtype`` (cached), or a file's (which
    must price ``dtype`` when that is given)."""
    if spec == NONE:
        return None, None
    from edgeprune.deploy import host_profile

    if spec == HOST:
        if progress is None and echo is not None:
            def progress(done, total):
                if done % 50 == 0 or done == total:
                    echo(f"  {done}/{total} single-layer models converted")
        return host_profile.host_profile(num_threads or 1, echo=echo, progress=progress, dtype=dtype or "fp32")
    return host_profile.pruning_profile(spec, num_threads, dtype)


def _one_shot(options: PruneOptions, profile=None, source=None) -> str:
    from edgeprune.commands.render import one_shot_summary
    from edgeprune.prune.oneshot import one_shot_prune

    report = one_shot_prune(options.model, options.channel_ratio, options.out_dir, options.input_size,
                            channel_multiple=options.channel_multiple, profile=profile, profile_source=source)
    if options.as_json:  # the per-layer tables stay in report.json
        return json.dumps({k: v for k, v in report.items() if k not in ("original", "pruned")} |
                          {"original": {"totals": report["original"]["totals"]},
                           "pruned": {"totals": report["pruned"]["totals"]}})
    return one_shot_summary(report, options.out_dir)
