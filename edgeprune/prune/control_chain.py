"""The control gate's equal-budget control, kept in step with the loop (``--gate control``).

Each iteration of the prune loop fine-tunes the pruned model for one *chunk* (the preset's ``finetune_steps``) from
its accepted weights, with a fresh Adam. The control that judges it is the unpruned baseline given the same: chunk
``j`` continues chunk ``j - 1``'s weights for ``finetune_steps`` steps, fresh Adam, patches drawn from
``seed + 10,000 + j``. The control at ``n`` chunks then costs one chunk more than the control at ``n - 1``, where
one fresh fit per budget costs all ``n``: a loop that accepts ``k`` iterations trains ``k`` chunks of control
instead of ``k (k + 1) / 2`` (BENCHMARKS.md, "Table 1 end to end"). It is also the fairer comparison: the control
follows the pruned model's own schedule, chunk for chunk.

Every chunk is kept in the cache folder (``controls/chain-KEY-J.weights.h5`` and, once validated,
``chain-KEY-J.json``), ``KEY`` from what decides the result (the baseline's weights, the images, the fine-tuning
settings, the TensorFlow version), so another row on the same baseline and seed, a resumed run, or the run's final
control at the accepted budget continues the chain instead of training it again.
"""

from dataclasses import replace
from pathlib import Path

from edgeprune.core.atomic import atomic_path, write_json_atomic
from edgeprune.core.cache import cache_dir, content_key
from edgeprune.core.errors import InvalidArgumentError
from edgeprune.core.files import field, read_json
from edgeprune.train.fit import TrainConfig, fit, plain_copy, validate

CHAIN_FORMAT = 1  # part of every chain key
SEED_OFFSET = 10_000  # the control's patches are drawn apart from the loop's (seed + iteration)


class ControlChain:
    """``chain(steps)``: the quality (``steps``, ``chunks``, ``psnr``, ``ssim``; ``cached`` when it was on disk) of
    the unpruned ``baseline`` fine-tuned in ``steps / finetune.steps`` chunks, as the module says. ``echo`` receives
    one progress line per chunk trained."""

    def __init__(self, baseline, train_pool, val, finetune: TrainConfig, echo=lambda text: None, verbose: int = 0,
                 what: str = "control"):
        from importlib.metadata import version

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
        n = self.chunks_of(steps)
        if n == 0:
            return {"steps": 0, "chunks": 0, **quality_of(validate(self.baseline, self.val))}
        cached = self.quality_path(n)
        if cached.exists():
            return {**read_control(cached, "cached control"), "cached": str(cached)}
        start = next((j for j in range(n, 0, -1) if self.weights_path(j).exists()), 0)
        model = plain_copy(self.baseline)
        if start:
            try:
                model.load_weights(str(self.weights_path(start)))
            except Exception as exc:  # h5py fails in many ways on a truncated or foreign file
                raise InvalidArgumentError(f"cached control weights '{self.weights_path(start)}' are unreadable "
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
    cached = read_json(path, what, required=("steps", "psnr", "ssim"))
    for key in ("psnr", "ssim"):
        field(cached, key, (int, float), what, path)
    return cached
