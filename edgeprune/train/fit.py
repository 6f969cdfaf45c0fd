"""Training and fine-tuning: L1 loss, Adam, a step learning-rate schedule, under a tf.distribute strategy.

The strategy is TensorFlow's own: ``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` describes several hosts,
``MirroredStrategy`` over several GPUs (or several logical CPU devices, ``EDGEPRUNE_CPU_DEVICES=N``), else the
default one. Batches of aligned random patches come from a pool of (input, target) images
(:mod:`edgeprune.data.pairs`). ``workdir`` keeps a Keras ``BackupAndRestore`` checkpoint after every epoch, so a
killed run continues with ``resume=True`` from its last epoch.
"""

import math
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgeprune.runtime import keras, tf
from edgeprune.checks import integer_at_least
from edgeprune.data.pairs import PairSet, random_crops
from edgeprune.errors import InvalidArgumentError


@dataclass
class TrainConfig:
    steps: int = 1000
    batch_size: int = 16
    patch: int = 24  # input-side patch (EDSR: LR pixels; SID: packed pixels)
    learning_rate: float = 1e-4
    steps_per_epoch: int = 50
    seed: int = 0
    clipnorm: float | None = None  # clip the global gradient norm (Adam's global_clipnorm); None: no clipping

    def validate(self) -> None:
        for name in ("steps", "batch_size", "patch", "steps_per_epoch"):
            integer_at_least(name, getattr(self, name))
        if not self.learning_rate > 0:
            raise InvalidArgumentError(f"learning rate must be > 0, got {self.learning_rate!r}")
        if self.clipnorm is not None and not self.clipnorm > 0:
            raise InvalidArgumentError(f"gradient clip norm must be > 0 or None, got {self.clipnorm!r}")

    def to_dict(self) -> dict:
        return asdict(self)


def strategy_for_this_machine() -> tf.distribute.Strategy:
    if os.environ.get("TF_CONFIG"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    cpus = tf.config.list_logical_devices("CPU")
    if len(cpus) > 1:
        return tf.distribute.MirroredStrategy([d.name for d in cpus])
    return tf.distribute.get_strategy()


def epoch_split(steps: int, steps_per_epoch: int) -> tuple[int, int]:
    """(steps per epoch, epochs) whose product is exactly ``steps``: the largest divisor of ``steps`` not above
    ``steps_per_epoch`` (and at least 10 when ``steps`` allows), else an epoch of ``steps_per_epoch``."""
    cap = min(steps_per_epoch, steps)
    for d in range(cap, 0, -1):
        if steps % d == 0 and d >= min(10, cap):
            return d, steps // d
    return cap, math.ceil(steps / cap)


def learning_rate_schedule(config: TrainConfig):
    """``learning_rate``, halved at 50% and again at 75% of the steps."""
    boundaries = [max(1, int(config.steps * 0.5)), max(2, int(config.steps * 0.75))]
    values = [config.learning_rate, config.learning_rate / 2, config.learning_rate / 4]
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)


def patch_dataset(pool: PairSet, config: TrainConfig, global_batch: int) -> tf.data.Dataset:
    rng = np.random.default_rng(config.seed)
    x0, y0 = random_crops(pool, config.patch, 1, np.random.default_rng(0))

    def batches():
        while True:
            yield random_crops(pool, config.patch, global_batch, rng)

    spec = (tf.TensorSpec((global_batch, *x0.shape[1:]), tf.float32),
            tf.TensorSpec((global_batch, *y0.shape[1:]), tf.float32))
    return tf.data.Dataset.from_generator(batches, output_signature=spec).prefetch(2)


def _clone(model: keras.Model) -> keras.Model:
    """``model``'s architecture with freshly initialised weights; knows our custom layers."""
    import keras_models

    with keras.utils.custom_object_scope(keras_models.CUSTOM_OBJECTS):
        return keras.models.clone_model(model)


def plain_copy(model: keras.Model) -> keras.Model:
    """An independent copy of ``model`` (same architecture, copied weights) that knows our custom layers."""
    copy = _clone(model)
    copy.set_weights(model.get_weights())
    return copy


def initialised_copy(model: keras.Model, seed: int) -> keras.Model:
    """``model``'s architecture with fresh initial weights drawn reproducibly from ``seed`` (it seeds Python's,
    NumPy's and TensorFlow's global generators, as ``keras.utils.set_random_seed`` does): a baseline trained from a
    reference name starts from the same weights on every run."""
    keras.utils.set_random_seed(seed)
    return _clone(model)


def fit(model: keras.Model, pool: PairSet, config: TrainConfig, strategy=None, workdir=None, resume: bool = False,
        callbacks=(), verbose: int = 1, masks=None) -> tuple[keras.Model, dict]:
    """Trains a copy of ``model`` for ``config.steps`` steps; returns it (unwrapped) and the loss history.

    With ``masks`` (:class:`edgeprune.prune.masking.ChannelMasks`) the copy is fine-tuned with those channels masked out
    through tfmot's pruning wrappers (built inside the strategy's scope), and the returned model has them exactly 0.
    """
    config.validate()
    strategy = strategy or strategy_for_this_machine()
    backup = Path(workdir) / "backup" if workdir else None
    if backup and backup.exists() and not resume:
        shutil.rmtree(backup)  # a fresh run never picks up a stale checkpoint silently
    with strategy.scope():
        if masks is None:
            trained = plain_copy(model)
        else:
            from edgeprune.prune.masking import wrap

            trained = wrap(model)
            masks.apply(trained)
        optimizer = keras.optimizers.Adam(learning_rate_schedule(config), global_clipnorm=config.clipnorm)
        trained.compile(optimizer=optimizer, loss="mae")
    steps_per_epoch, epochs = epoch_split(config.steps, config.steps_per_epoch)
    cbs = list(callbacks)
    if masks is not None:
        import tensorflow_model_optimization as tfmot

        from edgeprune.prune.masking import ChannelMaskCallback

        cbs += [tfmot.sparsity.keras.UpdatePruningStep(), ChannelMaskCallback(masks)]
    if backup:  # first, so an epoch is saved before any other callback can stop the run
        cbs.insert(0, keras.callbacks.BackupAndRestore(str(backup)))
    data = patch_dataset(pool, config, config.batch_size)
    history = trained.fit(data, epochs=epochs, steps_per_epoch=steps_per_epoch, callbacks=cbs, verbose=verbose)
    if backup and backup.exists():
        shutil.rmtree(backup)
    if masks is not None:
        from edgeprune.prune.masking import unwrap

        trained = unwrap(trained, model)
    return trained, {"loss": [float(v) for v in history.history.get("loss", [])],
                     "replicas": strategy.num_replicas_in_sync, "epochs": epochs,
                     "steps": steps_per_epoch * epochs}


def task_of(model: keras.Model) -> str:
    """'sid' for a packed-raw (4-channel) input, 'edsr' for RGB super-resolution."""
    channels = model.inputs[0].shape[-1]
    if channels == 4:
        return "sid"
    if channels == 3:
        return "edsr"
    raise InvalidArgumentError(f"edgeprune trains image-restoration models with 3 (RGB) or 4 (packed raw) input "
                               f"channels; this model has {channels}")


def load_data(task: str, data, settings: dict, scale: int = 2):
    """(train pool, validation set) for ``task`` from a user folder, or the built-in default when ``data`` is None."""
    from edgeprune.data import pairs

    if data is None:
        if task == "sid":
            return pairs.builtin_sid(settings["train_images"], settings["train_size"], settings["val_side"],
                                     **{k: settings[k] for k in ("ratios", "sensor") if k in settings})
        return pairs.builtin_sr(scale, settings["train_images"], settings["train_size"], settings["val_side"])
    if task == "sid":
        return pairs.sid_folder(data, settings["train_images"], settings["val_side"])
    return pairs.sr_folder(data, scale, settings["patch"], settings["val_side"])


def scale_of(model: keras.Model) -> int:
    """Output/input size ratio of an image model, from its shapes at a probe size."""
    from edgeprune.graph.model_graph import ModelGraph, spatial_size_of

    graph = ModelGraph(model)
    shapes = graph.shapes_at((32, 32))
    out = shapes[graph.outputs[0].node].outputs[graph.outputs[0].index]
    return out[1] // spatial_size_of(shapes, graph)[0]


def validate(model: keras.Model, val: PairSet) -> dict:
    from edgeprune.train.quality import evaluate

    border = val.factor if val.factor > 1 and model.inputs[0].shape[-1] == 3 else 0
    return evaluate(model, list(zip(val.inputs, val.targets)), border=border)


def train_command(model, out, data=None, preset_name: str = "quick", steps=None, batch_size=None, patch=None,
                  resume: bool = False, verbose: int = 1) -> dict:
    """``edgeprune train``: trains ``model`` (reference name or .keras) and saves it to ``out`` (.keras) with a
    report ``out.json`` (validation PSNR/SSIM, data, configuration)."""
    import time

    from edgeprune.modelio import resolve_model, save_model
    from edgeprune.atomic import write_json_atomic
    from edgeprune.train.presets import preset

    out = Path(out)
    if out.suffix.lower() != ".keras":
        raise InvalidArgumentError(f"output '{out}' must end in .keras")
    resolved = resolve_model(model)
    task = task_of(resolved.model)
    settings = preset(preset_name, task)
    def given(value, key):
        return settings[key] if value is None else value  # an explicit 0 is an error, not "use the default"

    config = TrainConfig(steps=given(steps, "steps"), batch_size=given(batch_size, "batch_size"),
                         patch=given(patch, "patch"), learning_rate=settings["learning_rate"],
                         clipnorm=settings.get("clipnorm"))
    config.validate()
    train_pool, val = load_data(task, data, {**settings, "patch": config.patch}, scale_of(resolved.model))
    workdir = out.parent / f".{out.name}.work"
    start = time.perf_counter()
    from keras_models import REFERENCE_MODELS

    # a reference name starts from reproducible initial weights; a given .keras model goes on from its own
    start_from = initialised_copy(resolved.model, config.seed) if str(model) in REFERENCE_MODELS else resolved.model
    trained, history = fit(start_from, train_pool, config, workdir=workdir, resume=resume, verbose=verbose)
    seconds = time.perf_counter() - start
    quality = validate(trained, val)
    save_model(trained, out)
    report = {"model": resolved.name, "task": task, "preset": preset_name, "config": config.to_dict(),
              "train_seconds": round(seconds, 1), "history": history, "validation": quality,
              "data": {"train": train_pool.description, "validation": val.description}}
    write_json_atomic(Path(str(out) + ".json"), report)
    shutil.rmtree(workdir, ignore_errors=True)
    return report
