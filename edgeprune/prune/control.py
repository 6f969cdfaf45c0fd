"""The equal-budget control: the unpruned model trained for as many steps as a pruned candidate's accepted history
holds, with the same training, so that steps a baseline far from converged would gain anyway are not credited to
pruning. The gate (``gate="control"``) accepts a candidate only if it is also within tolerance of the control at
that budget.

Two implementations of one interface, ``control(steps) -> metrics``:

- :class:`EqualBudgetControl` (public): a copy of the user's model trained forward with the user's training
  (``train(model, steps)``, or ``fit`` on a dataset), answers kept in memory.
- :class:`ControlChain` (``edgeprune prune``): the baseline fine-tuned in the loop's own *chunks* (the preset's
  ``finetune_steps``, a fresh Adam each, patches drawn from ``seed + 10,000 + j``), every chunk cached in the cache
  folder (``controls/chain-KEY-J.weights.h5`` and, once validated, ``chain-KEY-J.json``; ``KEY`` from what decides
  the result: the baseline's weights, the images, the fine-tuning settings, the TensorFlow version), so another run
  on the same baseline and seed, a resumed run, or the final control at the accepted budget continues the chain
  instead of training it again. The control at ``n`` chunks costs one chunk more than at ``n - 1``: a loop that
  accepts ``k`` iterations trains ``k`` chunks of control instead of ``k (k + 1) / 2``. The QR strategy's recovery
  is one chunk of ``--recover-steps``.

This module imports nothing heavy at import time: the command line reads :data:`GATES` from it.
"""

from dataclasses import replace
from pathlib import Path

from edgeprune.core.checks import integer_at_least
from edgeprune.core.errors import FileFormatError, InvalidArgumentError

# what an iteration's quality is judged against: the baseline's, or the baseline's and the equal-budget control's
GATES = ("baseline", "control")


class EqualBudgetControl:
    """``control(steps) -> metrics``: ``metric`` of a copy of the unpruned ``model`` trained for ``steps`` steps.

    Training is either ``train(model, steps)`` (a callable that trains the copy in place for ``steps`` more steps:
    the user's own loop or subclassed trainer), or Keras' ``fit`` on ``data`` (an endless dataset of (input,
    target) batches) with ``loss`` and a fresh ``optimizer`` (default Adam 1e-4). The copy trains forward only: a
    budget asked for again is answered from memory, and a smaller budget than one already trained is an error."""

    def __init__(self, model, metric, *, train=None, data=None, loss="mae", optimizer=None):
        from edgeprune.core.runtime import keras
        from edgeprune.train.fit import plain_copy

        if not callable(metric):
            raise InvalidArgumentError(f"metric must be a callable model -> dict of values, got {metric!r}")
        if (train is None) == (data is None):
            raise InvalidArgumentError("give the control's training: train=callable(model, steps) or data= (with "
                                       "loss= and optimizer=), one of them")
        self.metric, self.train = metric, train
        self.model = plain_copy(model)
        self.data = None
        if data is not None:
            self.model.compile(optimizer=optimizer or keras.optimizers.Adam(1e-4), loss=loss)
            self.data = iter(data)
        self.steps = 0
        self.answers = {0: None}

    def __call__(self, steps: int) -> dict:
        integer_at_least("steps", steps, 0)
        if self.answers.get(steps) is not None:
            return self.answers[steps]
        if steps < self.steps:
            raise InvalidArgumentError(f"the control has trained {self.steps} steps and trains forward only: it "
                                       f"cannot answer for {steps}")
        more = steps - self.steps
        if more:
            if self.train is not None:
                self.train(self.model, more)
            else:
                for _ in range(more):
                    x, y = next(self.data)
                    self.model.train_on_batch(x, y)
            self.steps = steps
        self.answers[steps] = {k: float(v) for k, v in self.metric(self.model).items()}
        return self.answers[steps]


CHAIN_FORMAT = 1  # part of every chain key
SEED_OFFSET = 10_000  # the control's patches are drawn apart from the loop's (seed + iteration)


class ControlChain:
    """``chain(steps)``: the quality (``steps``, ``chunks``, ``psnr``, ``ssim``; ``cached`` when it was on disk) of
    the unpruned ``baseline`` fine-tuned in ``steps / finetune.steps`` chunks, as the module says. ``echo`` receives
    one progress line per chunk trained."""

    def __init__(self, baseline, train_pool, val, finetune, echo=lambda text: None, verbose: int = 0,
                 what: str = "control"):
        from importlib.metadata import version

        from edgeprune.core.cache import cache_dir, content_key

        finetune.validate()
        self.baseline, self.train_pool, self.val, self.finetune = baseline, train_pool, val, finetune
        self.echo, self.verbose, self.what = echo, verbose, what
        self.key = content_key("control-chain", CHAIN_FORMAT, baseline.get_weights(), train_pool.inputs,
                               train_pool.targets, train_pool.factor, val.inputs, val.targets, finetune.to_dict(),
                               version("tensorflow"))
        self.folder = cache_dir() / "controls"
        self.trained = 0  # chunks trained by this object (the rest came from the cache)

    def quality_path(self, chunk: int) -> Path:
        return self.folder / f"chain-{self.key}-{chunk}.json"

    def weights_path(self, chunk: int) -> Path:
        return self.folder / f"chain-{self.key}-{chunk}.weights.h5"

    def chunks_of(self, steps: int) -> int:
        size = self.finetune.steps
        if steps < 0 or steps % size:
            raise InvalidArgumentError(f"the control chain trains in chunks of {size} steps (the fine-tuning "
                                       f"steps of one iteration); {steps} steps is not a whole number of chunks")
        return steps // size

    def __call__(self, steps: int) -> dict:
        from edgeprune.core.atomic import atomic_path, write_json_atomic
        from edgeprune.train.fit import fit, plain_copy, validate

        n = self.chunks_of(steps)
        if n == 0:
            return {"steps": 0, "chunks": 0, **quality_of(validate(self.baseline, self.val))}
        cached = self.quality_path(n)
        if cached.exists():
            self.echo(f"{self.what}: the unpruned baseline fine-tuned for the same {steps} steps, from the cache "
                      f"{cached} (an earlier run on the same baseline, data and fine-tuning)")
            return {**read_control(cached, "cached control"), "cached": str(cached)}
        start = next((j for j in range(n, 0, -1) if self.weights_path(j).exists()), 0)
        model = plain_copy(self.baseline)
        if start:
            try:
                model.load_weights(str(self.weights_path(start)))
            except (OSError, ValueError, KeyError) as exc:  # h5py: truncated or foreign; Keras: do not fit
                raise FileFormatError(f"cached control weights '{self.weights_path(start)}' are unreadable "
                                      f"({exc.__class__.__name__}): delete them and run again") from None
            self.echo(f"{self.what}: the unpruned baseline after {start * self.finetune.steps} steps from the cache "
                      f"{self.weights_path(start)}")
        for j in range(start + 1, n + 1):
            self.echo(f"{self.what}: fine-tuning the unpruned baseline, chunk {j} of {n} ({self.finetune.steps} "
                      f"steps from step {(j - 1) * self.finetune.steps}, a fresh Adam as each iteration has)")
            model, _ = fit(model, self.train_pool, replace(self.finetune, seed=self.finetune.seed + SEED_OFFSET + j),
                           verbose=self.verbose)
            with atomic_path(self.weights_path(j), suffix=".partial.weights.h5") as tmp:
                model.save_weights(str(tmp))
            self.trained += 1
        quality = {"steps": steps, "chunks": n, **quality_of(validate(model, self.val))}
        write_json_atomic(cached, quality)
        return quality


def quality_of(q: dict) -> dict:
    """PSNR and SSIM of a :func:`~edgeprune.train.fit.validate` result (without its image count)."""
    return {"psnr": q["psnr"], "ssim": q["ssim"]}


def read_control(path: Path, what: str) -> dict:
    """A control's cached record (``steps``, ``psnr``, ``ssim``), checked: a report subtracts and formats them."""
    from edgeprune.core.files import field, read_json

    cached = read_json(path, what, required=("steps", "psnr", "ssim"))
    for key in ("psnr", "ssim"):
        field(cached, key, (int, float), what, path)
    return cached
