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
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from edgeprune.core.runtime import keras, tf
from edgeprune.core.checks import integer_at_least
from edgeprune.data.pairs import PairSet, random_crops
from edgeprune.core.errors import InvalidArgumentError
from edgeprune.train.distill import Distiller


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
    # tf.data's autotuning off: its model thread sleeps in periods that grow to tens of seconds and, when Keras
    # drops the iterator at the end of a fit, the process waited idle for the rest of the period (py-spy: in
    # ~IteratorResource; 20-45 s at the end of 4 of the 7 fits of a quick SID run on a 2-core host). The prefetch
    # depth is explicit, so there is nothing for it to tune.
    options = tf.data.Options()
    options.autotune.enabled = False
    return tf.data.Dataset.from_generator(batches, output_signature=spec).prefetch(2).with_options(options)


def _clone(model: keras.Model, seed: int) -> keras.Model:
    """``model``'s architecture with fresh weights, drawn reproducibly from ``seed``; knows our custom layers.

    Every initializer that takes a seed is rebuilt with its own explicit one (derived from ``seed``, the layer's index
    and the initializer's), so no draw comes from Python's, NumPy's or TensorFlow's global generators (Keras draws an
    unseeded initializer's seed from Python's). The copy's layer configs stay the source's."""
    import keras_models

    integer_at_least("seed", seed, 0)
    index = {id(layer): i for i, layer in enumerate(model.layers)}
    restore = []  # (fresh layer, initializer attribute, the source's initializer config)

    def clone(layer):
        config = layer.get_config()
        keys = [key for key, value in config.items() if key.endswith("_initializer") and value is not None]
        replaced = {}
        for k, key in enumerate(keys):
            initializer = keras.initializers.get(config[key])
            init_config = initializer.get_config()
            if "seed" not in init_config:  # constant initializers (zeros, ones) draw nothing
                continue
            derived = int(np.random.SeedSequence([seed, index[id(layer)], k]).generate_state(1)[0] >> 1)
            replaced[key] = config[key]
            config[key] = initializer.__class__.from_config({**init_config, "seed": derived})
        fresh = layer.__class__.from_config(config)
        restore.extend((fresh, key, original) for key, original in replaced.items())
        return fresh

    with keras.utils.custom_object_scope(keras_models.CUSTOM_OBJECTS):
        copy = keras.models.clone_model(model, clone_function=clone)
        for layer, key, original in restore:  # the weights exist now: the configs say what the source's say
            if hasattr(layer, key):
                setattr(layer, key, keras.initializers.get(original))
    return copy


def plain_copy(model: keras.Model) -> keras.Model:
    """An independent copy of ``model`` (same architecture, copied weights) that knows our custom layers."""
    copy = _clone(model, 0)
    copy.set_weights(model.get_weights())
    return copy


def initialised_copy(model: keras.Model, seed: int) -> keras.Model:
    """``model``'s architecture with fresh initial weights drawn reproducibly from ``seed`` (explicit initializer
    seeds; no global generator is read or reseeded): a baseline trained from a reference name starts from the same
    weights on every run."""
    return _clone(model, seed)


def _optimizer(config: TrainConfig):
    return keras.optimizers.Adam(learning_rate_schedule(config), global_clipnorm=config.clipnorm)


def _train(trained: keras.Model, pool: PairSet, config: TrainConfig, callbacks: list, verbose: int):
    """Runs Keras' fit on ``trained`` (compiled) for exactly ``config.steps`` steps of fresh patches."""
    steps_per_epoch, epochs = epoch_split(config.steps, config.steps_per_epoch)
    data = patch_dataset(pool, config, config.batch_size)
    history = trained.fit(data, epochs=epochs, steps_per_epoch=steps_per_epoch, callbacks=callbacks, verbose=verbose)
    return history, steps_per_epoch, epochs


def _record(history, strategy, steps_per_epoch: int, epochs: int) -> dict:
    distillation = history.history.get("distillation")
    return {"loss": [float(v) for v in history.history.get("loss", [])],
            **({"distillation": [float(v) for v in distillation]} if distillation is not None else {}),
            "replicas": strategy.num_replicas_in_sync, "epochs": epochs, "steps": steps_per_epoch * epochs}


def fit(model: keras.Model, pool: PairSet, config: TrainConfig, strategy=None, workdir=None, resume: bool = False,
        callbacks=(), verbose: int = 1, masks=None, teacher=None, distill: float | None = None
        ) -> tuple[keras.Model, dict]:
    """Trains a copy of ``model`` for ``config.steps`` steps; returns it (unwrapped) and the loss history.

    With ``distill`` (a weight >= 0) the copy learns from the ground truth and from ``teacher``'s output, L1 at
    that weight (:class:`edgeprune.train.distill.Distiller`); the history then has a ``distillation`` entry.

    With ``masks`` the copy is fine-tuned with those channels masked out, and the returned model has them exactly 0.
    ``masks`` (:class:`edgeprune.prune.masking.ChannelMasks`) brings its own hooks: ``wrap_for_training(model)`` (called
    inside the strategy's scope), ``training_callbacks(wrapped)`` and ``unwrap(trained, model)``. The prune loop does
    not call this once per iteration: it trains one wrapped model in one ``fit`` under changing masks
    (:mod:`edgeprune.prune.gating`), which computes the same chunk by chunk.
    """
    config.validate()
    if distill is not None and teacher is None:
        raise InvalidArgumentError("distillation needs the teacher whose output the copy learns from: pass teacher=")
    strategy = strategy or strategy_for_this_machine()
    backup = Path(workdir) / "backup" if workdir else None
    if backup and backup.exists() and not resume:
        shutil.rmtree(backup)  # a fresh run never picks up a stale checkpoint silently
    with strategy.scope():
        trained = plain_copy(model) if masks is None else masks.wrap_for_training(model)
        trainer = trained if distill is None else Distiller(trained, teacher, distill)
        trainer.compile(optimizer=_optimizer(config), loss="mae")
    cbs = list(callbacks)
    if masks is not None:
        cbs += masks.training_callbacks(trained)
    if backup:  # first, so an epoch is saved before any other callback can stop the run
        cbs.insert(0, keras.callbacks.BackupAndRestore(str(backup)))
    history, steps_per_epoch, epochs = _train(trainer, pool, config, cbs, verbose)
    if backup and backup.exists():
        shutil.rmtree(backup)
    if masks is not None:
        trained = masks.unwrap(trained, model)
    return trained, _record(history, strategy, steps_per_epoch, epochs)


def task_of(model: keras.Model) -> str:
    """'sid' for a packed-raw (4-channel) input, 'edsr' for RGB super-resolution."""
    channels = model.inputs[0].shape[-1]
    if channels == 4:
        return "sid"
    if channels == 3:
        return "edsr"
    raise InvalidArgumentError(f"edgeprune trains image-restoration models with 3 (RGB) or 4 (packed raw) input "
                               f"channels; this model has {channels}")


def load_data(task: str, data, settings, scale: int = 2):
    """(train pool, validation set) for ``task`` from a user folder, or the built-in default when ``data`` is None.

    ``settings``: the run's :class:`edgeprune.train.presets.Preset`, whose data fields (``train_images``,
    ``train_size``, ``val_side``, ``patch``; SID's ``ratios`` and ``sensor``, None: the data's defaults) are read
    as attributes; a dict of those fields is accepted too."""
    from pathlib import Path

    from edgeprune.data import pairs
    from edgeprune.data.sr import validation_folder

    if isinstance(settings, Mapping):
        settings = SimpleNamespace(**{"ratios": None, "sensor": None, **settings})
    if data is None:
        if task == "sid":
            options = {k: getattr(settings, k) for k in ("ratios", "sensor") if getattr(settings, k) is not None}
            return pairs.builtin_sid(settings.train_images, settings.train_size, settings.val_side, **options)
        return pairs.builtin_sr(scale, settings.train_images, settings.train_size, settings.val_side)
    if task == "sid":
        if not (Path(data) / "short").is_dir() and (Path(data) / "train").is_dir():  # sRGB photos: unprocessed
            options = {k: getattr(settings, k) for k in ("ratios", "sensor") if getattr(settings, k) is not None}
            return pairs.sid_rgb_folder(data, settings.val_side, settings.seed or 0, **options)
        return pairs.sid_folder(data, settings.train_images, settings.val_side)
    if (Path(data) / "train").is_dir() and validation_folder(data) is None:
        return pairs.sr_train_folder(data, scale, settings.patch, settings.val_side)
    return pairs.sr_folder(data, scale, settings.patch, settings.val_side)


def scale_of(model: keras.Model, graph=None) -> int:
    """Output/input size ratio of an image model, from its shapes at a probe size (``graph``: its
    :class:`~edgeprune.graph.model_graph.ModelGraph`, when the caller has built it)."""
    from edgeprune.graph.model_graph import ModelGraph, spatial_size_of

    graph = graph if graph is not None else ModelGraph(model)
    shapes = graph.shapes_at((32, 32))
    out = shapes[graph.outputs[0].node].outputs[graph.outputs[0].index]
    return out[1] // spatial_size_of(shapes, graph)[0]


def validate(model: keras.Model, val: PairSet) -> dict:
    from edgeprune.train.quality import evaluate

    border = val.factor if val.factor > 1 and model.inputs[0].shape[-1] == 3 else 0
    return evaluate(model, list(zip(val.inputs, val.targets)), border=border)


def validate_bicubic(val: PairSet) -> dict:
    """Bicubic upscaling measured as :func:`validate` measures an SR model on ``val`` (the same images, the same
    ``factor``-pixel border): the floor a trained super-resolution model has to clear."""
    from edgeprune.train.quality import evaluate

    if val.factor <= 1 or np.asarray(val.inputs[0]).shape[-1] != 3:
        raise InvalidArgumentError("bicubic upscaling is a reference for RGB super-resolution validation sets only")

    def bicubic(x, training=False):
        h, w = x.shape[1:3]
        return tf.image.resize(x, (h * val.factor, w * val.factor), method="bicubic")

    return evaluate(bicubic, list(zip(val.inputs, val.targets)), border=val.factor)
