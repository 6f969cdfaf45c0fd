"""The iterative, quality-gated prune loop (the paper's method A, with options B, C and D), as ``edgeprune prune``
runs it: one client of the public API.

Each iteration proposes a higher level (:mod:`edgeprune.prune.level`: the fraction of the baseline's MAC, or of its
predicted latency when pruning for a device, to remove). The proposer (:mod:`edgeprune.prune.proposers`) turns it
into an importance threshold on the unit scores of the configured criterion (:mod:`edgeprune.prune.criteria`:
normalised filter norms by default, measured on the accepted weights and normalised by the *baseline's* per-layer
means so the scale does not drift as pruned filters go to zero; Taylor or QR scores from data), or, for the coarse
strategy, picks the least damaging of random masks. The threshold's steps adapt to how spread the scores are: a
briefly trained network has normalised filter norms within a few percent of 1, where fixed steps in norm prune
nothing for a while and then most of the network at once (BENCHMARKS.md, "Figures behind the library's defaults").

:func:`prune_loop` builds a :class:`~edgeprune.prune.pruner.Pruner`, compiles its tfmot-wrapped model with L1 loss and
Adam (with ``settings.distill``, inside a :class:`~edgeprune.train.distill.Distiller` whose teacher is the baseline:
L1 to the ground truth plus that weight times L1 to the baseline's output), and trains it in ONE ``fit`` with
:class:`~edgeprune.prune.gating.QualityGatedPruning`: every ``finetune.steps`` steps the gate measures PSNR/SSIM on
the held-out images and accepts (within the tolerance of the baseline's, with ``gate="control"`` also of the
equal-budget control's: the unpruned baseline fine-tuned for as many steps as the candidate's history holds) or rolls
weights and masks back; each proposal starts from a fresh Adam (``reset_optimizer``) on patches drawn from ``seed +
iteration``, as each iteration always has. Pruned units stay pruned (the plan only shrinks). After every decision the
state and the accepted weights are checkpointed in ``workdir``, so a killed run continues with ``resume=True`` and
loses no accepted iteration.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeprune.data.pairs import PairSet, random_crops
from edgeprune.core.errors import InvalidArgumentError
from edgeprune.graph.coupling import Coupling
from edgeprune.prune.criteria import PoolBatches
from edgeprune.prune.gating import QualityGatedPruning
from edgeprune.prune.plan import PruningPlan
# the names the loop's users have always imported from here
from edgeprune.prune.pruner import STATE_FILE, LoopState, Pruner, load_state  # noqa: F401
from edgeprune.prune.threshold import fill_to_level, propose_keep, threshold_for_level  # noqa: F401
from edgeprune.prune.settings import GATES, LoopSettings, Tolerance, check_target, profile_identity  # noqa: F401
from edgeprune.core.runtime import keras, tf
from edgeprune.core.timing import PhaseTimes
from edgeprune.train.distill import Distiller
from edgeprune.train.fit import learning_rate_schedule, strategy_for_this_machine, validate


@dataclass
class LoopResult:
    model: object  # the accepted masked model, unwrapped (pruned channels are exactly 0)
    plan: PruningPlan
    state: LoopState
    coupling: Coupling | None = None  # of ``model`` (slim it with this coupling rather than build another)
    kernels: dict | None = None  # coarse: the kept-kernel masks of the accepted state (edgeprune.prune.coarse)


def chunk_dataset(pool: PairSet, patch: int, batch_size: int, steps: int, seed: int, first_chunk: int = 0):
    """Training batches for one ``fit`` of several chunks of ``steps`` steps: chunk ``c`` (counted from
    ``first_chunk``) draws its patches from ``seed + c + 1``, so chunk ``c`` of a run resumed at ``first_chunk``
    sees what it would have seen in one run, and iteration ``k`` of the loop what it has always seen."""
    x0, y0 = random_crops(pool, patch, 1, np.random.default_rng(0))

    def batches():
        chunk = first_chunk
        while True:
            rng = np.random.default_rng(seed + chunk + 1)
            for _ in range(steps):
                yield random_crops(pool, patch, batch_size, rng)
            chunk += 1

    spec = (tf.TensorSpec((batch_size, *x0.shape[1:]), tf.float32),
            tf.TensorSpec((batch_size, *y0.shape[1:]), tf.float32))
    options = tf.data.Options()
    options.autotune.enabled = False  # see edgeprune.train.fit.patch_dataset
    return tf.data.Dataset.from_generator(batches, output_signature=spec).prefetch(2).with_options(options)


def prune_loop(baseline, train_pool, val, settings: LoopSettings, baseline_quality: dict, input_size,
               workdir, resume: bool = False, progress=None, strategy=None, verbose: int = 1,
               latency_size=None, times: PhaseTimes | None = None, control=None) -> LoopResult:
    """Runs the loop from ``baseline`` (a trained keras.Model). ``progress(record)`` is called after every
    iteration. ``input_size``: of the MAC figures; ``latency_size`` (default ``input_size``): of the predicted
    latency, with a profile. ``times`` collects the seconds of its phases (``loop.importance``, ``loop.finetune``,
    ``loop.validate``, ``loop.control``, ``loop.checkpoint``). ``control(steps)``: the quality (``psnr``,
    ``ssim``) of the unpruned baseline fine-tuned for ``steps``, which ``settings.gate == "control"`` needs; it is
    asked only for candidates that hold against the baseline. Returns the last accepted state."""
    if settings.gate == "control" and control is None:
        raise InvalidArgumentError("the control gate needs the control's quality: pass control=")
    times = times or PhaseTimes()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if not resume:  # a fresh run never picks up a stale checkpoint
        (workdir / STATE_FILE).unlink(missing_ok=True)
    strategy = strategy or strategy_for_this_machine()
    finetune = settings.finetune
    batches = PoolBatches(train_pool, finetune.patch, finetune.batch_size)
    with strategy.scope():
        pruner = Pruner(baseline, settings=settings, importance_data=batches, input_size=input_size,
                        latency_size=latency_size, times=times)
        if resume:
            pruner.restore(workdir)
        model = pruner.model
        optimizer = keras.optimizers.Adam(learning_rate_schedule(finetune), global_clipnorm=finetune.clipnorm)
        # with settings.distill, the unpruned baseline's output is a second target beside the ground truth
        trainer = model if settings.distill is None else Distiller(model, baseline, settings.distill)
        trainer.compile(optimizer=optimizer, loss="mae")
    gate = QualityGatedPruning(pruner, metric=lambda _: _quality(validate(pruner.unwrapped(), val)),
                               finetune_steps=finetune.steps, control=control, backup_dir=workdir,
                               reset_optimizer=True, baseline_quality=baseline_quality, progress=progress)
    trained_chunks = sum(1 for r in pruner.state.iterations if r["finetune_steps"])
    remaining = settings.policy.max_iterations - pruner.state.level.iteration
    if remaining > 0 and not pruner.done:
        data = chunk_dataset(train_pool, finetune.patch, finetune.batch_size, finetune.steps, finetune.seed,
                             first_chunk=trained_chunks)
        trainer.fit(data, epochs=remaining, steps_per_epoch=finetune.steps, callbacks=[gate], verbose=verbose)
    return LoopResult(pruner.strip(), pruner.plan, pruner.state, pruner.coupling, pruner.kernels)


def _quality(q: dict) -> dict:
    return {"psnr": q["psnr"], "ssim": q["ssim"]}
