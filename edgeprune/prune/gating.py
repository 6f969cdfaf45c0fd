"""The paper's quality-gated loop inside the user's own training: :class:`QualityGatedPruning`.

A Keras callback (and, for training loops without ``fit``, the same object driven by hand: :meth:`attach`,
:meth:`step`, :meth:`finish`). Every ``finetune_steps`` training steps it measures the model on the user's
validation data with the user's metric (PSNR/SSIM by default), accepts the last proposal when every value stays
within its tolerance of the unpruned model's (with ``gate="control"`` also of the equal-budget control's) or rolls
the network's weights, its masks and the optimizer's state back to the last accepted state, then asks the
:class:`~edgeprune.prune.pruner.Pruner` for the next level's masks and imposes them. It stops training when the
pruner is done: at the target, at the smallest step or after the iteration cap. With ``backup_dir`` the state is
checkpointed after every decision (by the chief alone under ``tf.distribute``), so a killed ``fit`` started again
with the same callback arguments continues with nothing accepted lost.

The gate keeps only gating, rollback and checkpointing: what to prune is the pruner's, how to train is the user's.
"""

import time

import numpy as np

from edgeprune.core.errors import InvalidArgumentError, ShapeError
from edgeprune.prune import tfmot_adapter
from edgeprune.core.runtime import keras, tf


def _optimizer_variables(optimizer) -> list:
    if optimizer is None:
        return []
    variables = optimizer.variables
    return list(variables() if callable(variables) else variables)


def _is_chief(model) -> bool:
    """Whether this process writes the outputs: the chief of a multi-worker strategy, or the only process."""
    strategy = model.distribute_strategy if model is not None else tf.distribute.get_strategy()
    return bool(getattr(strategy.extended, "should_checkpoint", True))


def validation_pairs(data) -> list[tuple[np.ndarray, np.ndarray]]:
    """``data`` as a list of single (input, target) images: a list of pairs of images or of batches, a pair of
    batched arrays, or a ``tf.data.Dataset`` of (input, target) batches."""
    if isinstance(data, tuple) and len(data) == 2 and np.ndim(data[0]) == 4:
        data = [data]
    cardinality = getattr(data, "cardinality", None)
    if callable(cardinality) and int(cardinality()) == -1:  # tf.data.INFINITE_CARDINALITY: reading it never ends
        raise ShapeError("the validation dataset repeats forever: give a finite one (drop .repeat(), or .take(N) "
                         "batches of whole held-out images)")
    pairs = []
    for item in data:
        if not (isinstance(item, (tuple, list)) and len(item) >= 2):
            raise ShapeError(f"validation data must hold (input, target) pairs, got {type(item).__name__}")
        x, y = np.asarray(item[0], np.float32), np.asarray(item[1], np.float32)
        if x.ndim == 3 and y.ndim == 3:
            pairs.append((x, y))
        elif x.ndim == 4 and y.ndim == 4 and len(x) == len(y):
            pairs.extend(zip(x, y))
        else:
            raise ShapeError(f"validation input {x.shape} and target {y.shape} are not images (H, W, C) or batches "
                             "of them (N, H, W, C) of the same count")
    if not pairs:
        raise ShapeError("validation data holds no image: give (input, target) pairs of whole images")
    return pairs


class QualityGatedPruning(keras.callbacks.Callback):
    """The paper's loop as a callback in ``fit`` (see the module's docstring).

    ``pruner``: the :class:`~edgeprune.prune.pruner.Pruner` whose ``model`` is trained (by ``fit`` on it, or on a
    model that calls it, such as a subclassed trainer with its own ``train_step``). ``validation_data``: (input,
    target) pairs of whole images (or a dataset of batches), checked against the model now. ``metric(model) ->
    dict``: replaces PSNR/SSIM (higher is better for every value); ``tolerance``: the largest accepted drop of each
    value (default: the pruner's PSNR/SSIM tolerances). ``control(steps) -> dict``: the same values of the
    unpruned model trained for ``steps`` steps, which ``gate="control"`` needs
    (:class:`~edgeprune.prune.control.EqualBudgetControl`). ``reset_optimizer``: every proposal starts from a
    fresh optimizer state (zeroed moments and step count), as the paper's loop fine-tunes each step afresh.
    ``baseline_quality``: the unpruned model's values, when already measured. ``border``: pixels cropped before
    PSNR/SSIM (default: the scale of a super-resolution model, else 0)."""

    def __init__(self, pruner, validation_data=None, *, metric=None, tolerance=None, finetune_steps=None,
                 control=None, backup_dir=None, reset_optimizer: bool = False, baseline_quality=None, border=None,
                 progress=None):
        super().__init__()
        from edgeprune.core.checks import integer_at_least
        from edgeprune.prune.pruner import Pruner

        if not isinstance(pruner, Pruner):
            raise InvalidArgumentError(f"QualityGatedPruning needs an edgeprune.Pruner, got {type(pruner).__name__}")
        self.pruner = pruner
        settings = pruner.settings
        self.finetune_steps = integer_at_least("finetune_steps", finetune_steps or settings.finetune.steps)
        if tolerance is None:
            tolerance = {"psnr": settings.tolerance.psnr, "ssim": settings.tolerance.ssim}
        if not isinstance(tolerance, dict) or not tolerance or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in tolerance.values()):
            raise InvalidArgumentError(f"tolerance must map metric names to the largest accepted drop (a number >= "
                                       f"0), got {tolerance!r}")
        self.tolerance = dict(tolerance)
        if settings.gate == "control" and control is None:
            raise InvalidArgumentError("gate='control' judges every step against the equal-budget control too: pass "
                                       "control= (an edgeprune.EqualBudgetControl, or any callable steps -> metrics)")
        if control is not None and settings.gate != "control":
            raise InvalidArgumentError("control= is what gate='control' judges against: set PruneConfig(gate='control')"
                                       " or drop control=")
        self.control = control
        if metric is None:
            if validation_data is None:
                raise InvalidArgumentError("give validation_data (held-out (input, target) images) or a metric")
            self.val = validation_pairs(validation_data)
            self.border = self._check_validation(self.val, border)
            metric = self._psnr_ssim
        elif not callable(metric):
            raise InvalidArgumentError(f"metric must be a callable model -> dict of values, got {metric!r}")
        self.metric = metric
        self.backup_dir = backup_dir
        self.reset_optimizer = reset_optimizer
        self.baseline_quality = dict(baseline_quality) if baseline_quality is not None else None
        self.user_progress = progress
        self._optimizer = self._fit_model = None
        self._proposal = None
        self._steps = 0
        self._update_step = None
        self._saved_iterations = None  # decisions in the last checkpoint written

    # -- validation --

    def _check_validation(self, pairs, border):
        model = self.pruner.current
        channels = model.inputs[0].shape[-1]
        x, y = min(pairs, key=lambda p: p[0].size)
        if x.shape[-1] != channels:
            raise ShapeError(f"validation inputs have {x.shape[-1]} channels; the model takes {channels}: give the "
                             "model's own inputs (e.g. packed 4-channel raw for SID, RGB for EDSR)")
        out = np.asarray(model(x[None], training=False))[0]
        if out.shape != y.shape:
            raise ShapeError(f"the model maps a validation input {x.shape} to {out.shape}, but its target is "
                             f"{y.shape}: give (input, target) pairs the model maps onto each other")
        if border is None:
            border = y.shape[0] // x.shape[0] if y.shape[0] > x.shape[0] and x.shape[-1] == 3 else 0
        return int(border)

    def _psnr_ssim(self, model) -> dict:
        from edgeprune.train.quality import evaluate

        result = evaluate(model, self.val, border=self.border)
        return {"psnr": result["psnr"], "ssim": result["ssim"]}

    def _measure(self) -> dict:
        quality = self.metric(self.pruner.model)
        if not isinstance(quality, dict) or set(self.tolerance) - set(quality):
            raise InvalidArgumentError(f"the metric returned {quality!r}; the gate needs the values "
                                       f"{sorted(self.tolerance)}: return them, or give tolerance= for its keys")
        return {k: float(v) for k, v in quality.items()}

    def _holds(self, quality: dict, reference: dict) -> bool:
        return all(quality[k] >= reference[k] - drop for k, drop in self.tolerance.items())

    # -- the loop, driven by Keras or by hand --

    def attach(self, model=None, optimizer=None) -> None:
        """Starts the loop: ``model`` is the model being trained (default: the pruner's), ``optimizer`` its optimizer
        (default ``model.optimizer``), whose state a rollback restores. Resumes from ``backup_dir`` when it holds a
        checkpoint; else measures the unpruned model. Then imposes the first proposal's masks."""
        wrapped = self.pruner.model
        self._fit_model = model if model is not None else wrapped
        self._optimizer = optimizer if optimizer is not None else getattr(self._fit_model, "optimizer", None)
        self._chief = _is_chief(self._fit_model)
        self._update_step = tfmot_adapter.UpdatePruningStep()
        self._update_step.set_model(wrapped)
        self._update_step.on_train_begin()
        resumed = self.backup_dir is not None and self.pruner.restore(self.backup_dir)
        if not resumed:
            if self.baseline_quality is None:
                with self.pruner.times.phase("loop.validate"):
                    self.baseline_quality = self._measure()
            self.pruner.set_baseline_quality(self.baseline_quality)
            if self.backup_dir is not None:
                self._save(weights=False)
        elif self.baseline_quality is None:  # the checkpoint's, else measured on the unpruned model
            saved = self.pruner.state.baseline
            self.baseline_quality = dict(saved) if saved else {
                k: float(v) for k, v in self.metric(self.pruner.baseline).items()}
        self._reported = len(self.pruner.state.iterations)
        self._snapshot()
        self._next()

    def step(self, steps: int = 1) -> bool:
        """Counts ``steps`` training steps of the model; judges the proposal at the end of its chunk. Returns True
        once the loop is done (the model then holds the last accepted state)."""
        if self._proposal is None:
            return True
        for var, multiplier in self._multipliers:  # tfmot masks the kernels on every step; the rest is zeroed here
            var.assign(var * multiplier)
        self._steps += steps
        if self._steps >= self.finetune_steps:
            self._judge()
        return self._proposal is None

    def finish(self) -> None:
        """Ends the loop: a proposal not yet judged is dropped, and the model holds the last accepted state (steps
        trained after the last decision are undone)."""
        if self._update_step is None:  # never attached
            return
        self._restore()
        self._proposal = None
        self._update_step.on_epoch_end(0)

    @property
    def done(self) -> bool:
        return self._proposal is None and self.pruner.done

    def _judge(self) -> None:
        pruner, proposal = self.pruner, self._proposal
        pruner.times.add("loop.finetune", time.perf_counter() - self._chunk_started)
        self._masks.apply(pruner.model)  # the removed channels exactly 0, as the exported model has them
        with pruner.times.phase("loop.validate"):
            quality = self._measure()
        ok = self._holds(quality, self.baseline_quality)
        control = None
        if ok and self.control is not None:
            steps = pruner.state.lineage_steps + self._steps
            with pruner.times.phase("loop.control"):
                reference = self.control(steps)
            control = {"steps": steps, **{k: float(reference[k]) for k in self.tolerance}}
            ok = self._holds(quality, reference)
        proposal.record["seconds"] = round(time.perf_counter() - self._proposal_started, 1)
        pruner.decide(proposal, ok, quality, self._steps, control,
                      weights_from=self.pruner.model if ok else None)
        if ok:
            self._snapshot()
        else:
            self._restore()
        with pruner.times.phase("loop.checkpoint"):
            if self.backup_dir is not None:
                self._save(weights=ok)
        self._report()
        self._next()

    def _report(self) -> None:
        """``progress(record)`` for every decision not yet reported (after it was checkpointed)."""
        iterations = self.pruner.state.iterations
        for record in iterations[self._reported:]:
            if self.user_progress:
                self.user_progress(record)
        self._reported = len(iterations)

    def _next(self) -> None:
        self._proposal_started = time.perf_counter()
        self._proposal = self.pruner.propose()
        if self.backup_dir is not None and self._proposal_is_new_state():
            self._save(weights=False)
        self._report()
        if self._proposal is None:
            if self._fit_model is not None:
                self._fit_model.stop_training = True
            return
        self._masks = masks = self.pruner.masks(self._proposal.keep, self._proposal.kernels)
        masks.apply(self.pruner.model)
        self._multipliers = masks.unmasked_multipliers(self.pruner.model)
        if self.reset_optimizer:
            for variable in _optimizer_variables(self._optimizer):
                variable.assign(tf.zeros_like(variable))
        self._steps = 0
        self._chunk_started = time.perf_counter()

    def _proposal_is_new_state(self) -> bool:
        """Whether levels decided without training (nothing new to prune) changed the state since the last save."""
        return len(self.pruner.state.iterations) != self._saved_iterations

    def _save(self, weights: bool) -> None:
        self.pruner.save(self.backup_dir, weights=weights, write=self._chief)
        self._saved_iterations = len(self.pruner.state.iterations)

    def _snapshot(self) -> None:
        self._accepted_weights = self.pruner.model.get_weights()
        self._accepted_optimizer = [v.numpy() for v in _optimizer_variables(self._optimizer)]

    def _restore(self) -> None:
        self.pruner.model.set_weights(self._accepted_weights)
        variables = _optimizer_variables(self._optimizer)
        if len(variables) == len(self._accepted_optimizer):
            for variable, value in zip(variables, self._accepted_optimizer):
                variable.assign(value)
        else:  # the optimizer made its state after the snapshot: a fresh one is what it had then
            for variable in variables:
                variable.assign(tf.zeros_like(variable))

    # -- Keras --

    def on_train_begin(self, logs=None):
        self.attach(self.model, getattr(self.model, "optimizer", None))

    def on_train_batch_end(self, batch, logs=None):
        self.step(1)

    def on_epoch_end(self, epoch, logs=None):
        self._update_step.on_epoch_end(epoch)

    def on_train_end(self, logs=None):
        self.finish()
