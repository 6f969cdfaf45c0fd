"""Channel masks driven through tensorflow-model-optimization (tfmot).

Prunable layers are wrapped with tfmot's ``PruneLowMagnitude`` wrapper and a schedule that never prunes on its own
(:class:`NeverPrune`), so tfmot never recomputes the masks: we set whole-channel masks ourselves, and tfmot applies
them (``weights = weights * mask``) on every forward pass and at epoch ends through ``UpdatePruningStep``. tfmot masks
only the weights its registry lists (kernels); :class:`ChannelMaskCallback` also keeps biases and depthwise kernels of
removed channels at exactly zero after every training step.

A channel removed from a layer's output is also masked out of every consumer's input (through the couplings), so a
masked model computes exactly what the slim model from :mod:`edgeprune.prune.surgery` computes.
"""

from dataclasses import dataclass

import numpy as np

from edgeprune.core.runtime import keras, tf
from edgeprune.prune import tfmot_adapter
from edgeprune.graph.coupling import Coupling
from edgeprune.graph.model_graph import TensorRef
from edgeprune.graph.layer_table import MIXING, channel_indices, kind_of, weight_name
from edgeprune.prune.plan import PruningPlan

WRAPPER_PREFIX = tfmot_adapter.WRAPPER_PREFIX


@keras.saving.register_keras_serializable(package="edgeprune")
class NeverPrune(tfmot_adapter.PruningSchedule):
    """A tfmot pruning schedule that never updates masks: masks change only when edgeprune sets them."""

    def __call__(self, step):
        return tf.constant(False), tf.constant(0.0, tf.float32)

    def get_config(self):
        return {"class_name": type(self).__name__, "config": {}}


def _wrappable(layer) -> bool:
    return isinstance(layer, MIXING) and bool(tfmot_adapter.prunable_weight_names(layer))


def wrap(model: keras.Model) -> keras.Model:
    """A copy of ``model`` with tfmot pruning wrappers on its prunable layers (same weights, masks all ones)."""

    def clone(layer):
        fresh = layer.__class__.from_config(layer.get_config())
        if _wrappable(layer):
            return tfmot_adapter.prune_low_magnitude(fresh, pruning_schedule=NeverPrune())
        return fresh

    import keras_models

    with keras.utils.custom_object_scope(keras_models.CUSTOM_OBJECTS):
        wrapped = keras.models.clone_model(model, clone_function=clone)
    load_weights(wrapped, model)
    return wrapped


def load_weights(wrapped: keras.Model, model: keras.Model) -> None:
    """``model``'s weights into ``wrapped`` (a wrapped copy of its architecture); the masks are left as they are."""
    for layer in model.layers:
        if layer.weights:
            inner(wrapped, layer.name).set_weights(layer.get_weights())


def copy_weights(source: keras.Model, target: keras.Model) -> None:
    """``source``'s layer weights into ``target``, layer by layer by name; either may be wrapped or plain copies of
    one architecture (tfmot's masks are not copied)."""
    for layer in target.layers:
        plain = layer.layer if tfmot_adapter.is_wrapper(layer) else layer
        if plain.weights:
            plain.set_weights(inner(source, plain.name).get_weights())


def inner(wrapped: keras.Model, name: str):
    """The layer called ``name`` inside a wrapped model (unwrapped)."""
    try:
        layer = wrapped.get_layer(WRAPPER_PREFIX + name)
        return layer.layer
    except ValueError:
        return wrapped.get_layer(name)


def unwrap(wrapped: keras.Model, like: keras.Model) -> keras.Model:
    """A plain copy of ``like`` (the unwrapped model ``wrapped`` was made from) with ``wrapped``'s weights."""
    import keras_models

    with keras.utils.custom_object_scope(keras_models.CUSTOM_OBJECTS):
        plain = keras.models.clone_model(like)
    for layer in plain.layers:
        if layer.weights:
            layer.set_weights(inner(wrapped, layer.name).get_weights())
    return plain


def wrappers(wrapped: keras.Model) -> list:
    return [l for l in wrapped.layers if tfmot_adapter.is_wrapper(l)]


@dataclass
class LayerMask:
    removed_in: np.ndarray
    removed_out: np.ndarray


class ChannelMasks:
    """Per-layer removed input/output channels of a plan, and how to impose them on a wrapped model."""

    def __init__(self, coupling: Coupling, plan: PruningPlan):
        plan.validate(coupling)
        kept = coupling.kept_channels({n: plan.kept_units(n) for n in coupling.groups})
        self.layers: dict[str, LayerMask] = {}
        for node in coupling.graph:
            if node.is_input or kind_of(node.layer).role not in ("mixing", "depthwise"):
                continue
            in_ref, out_ref = node.inputs[0], TensorRef(node.id, 0)
            removed_in = np.setdiff1d(np.arange(coupling.channels[in_ref]), kept[in_ref])
            removed_out = np.setdiff1d(np.arange(coupling.channels[out_ref]), kept[out_ref])
            if len(removed_in) or len(removed_out):
                self.layers[node.layer.name] = LayerMask(removed_in, removed_out)

    def _zero_slices(self, layer, mask: LayerMask) -> list[tuple[str, tuple]]:
        """(weight name, index) pairs to zero in ``layer`` for ``mask`` (the channel axes of the layer table)."""
        return channel_indices(layer, mask.removed_in, mask.removed_out)

    def apply(self, wrapped: keras.Model) -> None:
        """Sets tfmot masks and zeros every removed channel's weights in ``wrapped`` (exactly)."""
        for var, index, tfmot_mask in self._targets(wrapped):
            value = var.numpy()
            value[index] = 0
            var.assign(value)
            if tfmot_mask is not None:
                mvalue = tfmot_mask.numpy()
                mvalue[index] = 0
                tfmot_mask.assign(mvalue)

    def _targets(self, wrapped: keras.Model):
        """(variable, index to zero, its tfmot mask variable or None) for every removed slice."""
        for name, mask in self.layers.items():
            layer = inner(wrapped, name)
            variables = {weight_name(w): w for w in layer.weights}
            tfmot_masks = {}
            try:
                wrapper = wrapped.get_layer(WRAPPER_PREFIX + name)
                tfmot_masks = tfmot_adapter.mask_variables(wrapper)
            except ValueError:
                pass
            for name_of_weight, index in self._zero_slices(layer, mask):
                var = variables.get(name_of_weight)
                if var is not None:
                    yield var, index, tfmot_masks.get(id(var))

    def unmasked_multipliers(self, wrapped: keras.Model) -> list[tuple]:
        """(variable, 0/1 multiplier) for the removed slices tfmot does not mask itself (biases, depthwise kernels),
        so they can be kept at zero with cheap in-graph multiplications after every step."""
        multipliers = {}
        for var, index, tfmot_mask in self._targets(wrapped):
            if tfmot_mask is None:
                m = multipliers.setdefault(id(var), (var, np.ones(var.shape, var.dtype.as_numpy_dtype)))[1]
                m[index] = 0
        return [(var, tf.constant(m)) for var, m in multipliers.values()]

    # the hooks :func:`edgeprune.train.fit.fit` calls to fine-tune with these masks (fit only duck-types them)
    def wrap_for_training(self, model: keras.Model) -> keras.Model:
        """A tfmot-wrapped copy of ``model`` with these masks imposed (call it inside the strategy's scope)."""
        wrapped = wrap(model)
        self.apply(wrapped)
        return wrapped

    def impose(self, wrapped: keras.Model, model: keras.Model) -> None:
        """``model``'s weights into ``wrapped`` (made by :meth:`wrap_for_training` from a model of its architecture,
        under any masks), with these masks in place of the ones it had: what ``wrap_for_training(model)`` returns,
        without building a copy."""
        load_weights(wrapped, model)
        for wrapper in wrappers(wrapped):
            for mask in tfmot_adapter.mask_variables(wrapper).values():
                mask.assign(tf.ones_like(mask))
        self.apply(wrapped)

    def training_callbacks(self, wrapped: keras.Model | None = None) -> list:
        """The callbacks that keep these masks imposed while the wrapped copy trains (``wrapped``: that copy, when
        ``fit`` trains a model that calls it, such as a :class:`~edgeprune.train.distill.Distiller`)."""
        return [tfmot_adapter.UpdatePruningStep(), ChannelMaskCallback(self, wrapped)]

    def unwrap(self, trained: keras.Model, like: keras.Model) -> keras.Model:
        """A plain copy of ``like`` with the trained wrapped copy's weights (removed channels exactly 0)."""
        return unwrap(trained, like)


class ChannelMaskCallback(keras.callbacks.Callback):
    """Imposes channel masks when training starts and keeps masked weights exactly zero after every step.

    Use it with tfmot's ``UpdatePruningStep`` (which tfmot's wrappers require during ``fit``). ``wrapped``: the
    tfmot-wrapped model the masks are imposed on (default: the model ``fit`` trains).
    """

    def __init__(self, masks: ChannelMasks, wrapped: keras.Model | None = None):
        super().__init__()
        self.masks, self.wrapped = masks, wrapped

    @property
    def _target(self) -> keras.Model:
        return self.wrapped if self.wrapped is not None else self.model

    def on_train_begin(self, logs=None):
        self.masks.apply(self._target)
        self._multipliers = self.masks.unmasked_multipliers(self._target)

    def on_train_batch_end(self, batch, logs=None):
        # tfmot's wrappers mask the kernels on every step; the rest is zeroed here
        for var, multiplier in self._multipliers:
            var.assign(var * multiplier)

    def on_train_end(self, logs=None):
        self.masks.apply(self._target)


def masked_model(model: keras.Model, plan: PruningPlan, coupling: Coupling | None = None) -> keras.Model:
    """A tfmot-wrapped copy of ``model`` with ``plan``'s channel masks imposed."""
    coupling = coupling or Coupling(model)
    wrapped = wrap(model)
    ChannelMasks(coupling, plan).apply(wrapped)
    return wrapped
