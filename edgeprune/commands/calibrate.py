"""``edgeprune calibrate --host``: time single-layer TFLite models on this machine and fit the latency model
(:mod:`edgeprune.deploy.latency`). Only the host can be calibrated; a phone's profile cannot be made yet."""

from edgeprune.checks import integer_at_least
from edgeprune.errors import InvalidArgumentError


def check_calibrate_options(out_path, model_specs, num_threads, runs, include_references: bool = True,
                            host: bool = True) -> None:
    """Raises unless the options name something to calibrate and a profile file to write: checked before any
    layer is timed (and before the CLI draws its progress bar)."""
    if not host:
        raise InvalidArgumentError("choose what to calibrate: --host (this machine, the only target calibrate "
                                   "supports)")
    integer_at_least("--runs", runs)
    integer_at_least("--num-threads", num_threads)
    if not str(out_path).endswith(".json"):
        raise InvalidArgumentError(f"output '{out_path}' must end in .json")
    if not include_references and not model_specs:
        raise InvalidArgumentError("nothing to calibrate: give --model, or leave out --only-given-models")


def calibrate_command(out_path, model_specs, input_size, num_threads, runs, progress=None,
                      include_references: bool = True, width_multipliers=(1.0, 0.75, 0.5), host: bool = True):
    """EDSR, SID and the given models' layer shapes, timed on this machine; writes the profile to ``out_path``
    and returns it."""
    check_calibrate_options(out_path, model_specs, num_threads, runs, include_references, host)
    import keras_models
    from edgeprune.deploy.latency import calibrate_host
    from edgeprune.modelio import resolve_model

    models = [keras_models.build_reference("edsr"), keras_models.build_reference("sid")] if include_references else []
    models += [resolve_model(spec).model for spec in model_specs]
    profile = calibrate_host(models, input_size, num_threads, runs, width_multipliers, progress=progress)
    profile.save(out_path)
    return profile
