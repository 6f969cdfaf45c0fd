"""Channel selection by QR factorisation with column pivoting, and least-squares reconstruction of the consuming
convolutions (Zhang, Davoodi, Hu, "Efficient Inference of CNNs via Channel Pruning", arXiv 1908.03266).

A consumer's input channels are the columns of a matrix of their values on sample (training) data; pivoted QR
orders them most linearly independent first (``|R_ii|`` non-increasing along the order), the group keeps the first
``counts[g]`` units, and every conv that reads them is re-fitted by least squares so that it reconstructs its outputs
from the channels that are left.

The paper mentions two tweaks for ResNet-like networks without describing them; edgeprune does the following:

1. A coupled group (EDSR's residual trunk, read by every block's first conv, the body-end conv and the upsampler) is
   selected once for all its tensors: the columns are the group's units, the rows the stacked samples of every
   tensor of the group that a consumer reads (a unit that owns several channels of a tensor, as behind a
   depth-to-space, gives one row block per channel slot). For a ``Conv2D`` consumer a sample is the centre tap of
   its receptive field at a sampled output position; for any other consumer (transposed, depthwise, dense) its
   input at a sampled input position.
2. Every ``Conv2D`` consumer of a pruned group is re-fitted against the ORIGINAL model's pre-activation outputs of
   that conv, with its inputs taken from the model as pruned so far (groups in graph order, a group's consumers in
   graph order, each sampled after the previous re-fits), so later layers compensate earlier pruning (as He, Zhang
   and Sun, "Channel Pruning for Accelerating Very Deep Neural Networks", ICCV 2017, do for multi-branch networks).
   The fit is ridge-regularised toward the conv's current weights; biases are not changed. Other consumers
   (transposed, depthwise, dense, 1-D convs) are not re-fitted: they only lose the removed input channels.

Rows are streamed: per batch only one batch's activations of the probed tensors exist; selection keeps a running
triangular factor (pivoted QR of ``R`` gives the pivots and ``|R_ii|`` of the stacked rows, since ``A = Q R``), and
the re-fit accumulates the normal equations in float64. The original's targets (sampled rows x outputs per conv and
batch) are computed in one pass of the original for as many convs as ``TARGET_BYTES`` holds, and patches are gathered
at the sampled positions only (the same values as before: on the quick EDSR baseline the reconstruction went
from 225 s to 140 s on 2 AVX-512 cores; the passes of the pruned copy, one per conv, are what is left).
"""

from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
import scipy.linalg

from edgeprune.data.pairs import PairSet, random_crops
from edgeprune.core.errors import InvalidArgumentError
from edgeprune.graph.coupling import ChannelGroup, Coupling
from edgeprune.graph.layer_table import kind_of
from edgeprune.graph.model_graph import TensorRef
from edgeprune.prune.masking import ChannelMasks
from edgeprune.prune.plan import PruningPlan, fingerprint
from edgeprune.core.runtime import keras, tf
from edgeprune.train.fit import plain_copy

MAX_ROWS_PER_BATCH = 1024  # sampled output positions per batch and consumer
RIDGE = 1e-4
BATCHES = 16  # batches of training patches, as for the Taylor scores
TARGET_BYTES = 256 * 2**20  # the original's re-fit targets held at once (float64 rows x outputs)


def _check_patchable(layer) -> None:
    if not isinstance(layer, keras.layers.Conv2D) or kind_of(layer).name != "conv":
        raise InvalidArgumentError(f"{type(layer).__name__} '{layer.name}' is not a Conv2D: patches are defined "
                                   "for plain 2-D convolutions only")
    if getattr(layer, "groups", 1) not in (1, None) or layer.data_format == "channels_first":
        raise InvalidArgumentError(f"Conv2D '{layer.name}' is grouped or channels_first: patches are defined for "
                                   "groups=1, channels_last convolutions only")
    if layer.padding not in ("same", "valid"):
        raise InvalidArgumentError(f"Conv2D '{layer.name}' has padding '{layer.padding}': use 'same' or 'valid'")


def _patches_4d(x, layer) -> tf.Tensor:
    kh, kw = layer.kernel_size
    return tf.image.extract_patches(tf.convert_to_tensor(x, tf.float32), sizes=[1, kh, kw, 1],
                                    strides=[1, *layer.strides, 1], rates=[1, *layer.dilation_rate, 1],
                                    padding=layer.padding.upper())


def conv_patches(x, layer) -> np.ndarray:
    """The receptive fields of ``layer`` (a groups=1 ``Conv2D``) on input ``x`` (NHWC): rows ``N*Ho*Wo`` in output
    order, columns ``kh*kw*Cin`` in the kernel's HWIO order, so ``conv_patches(x, layer) @ kernel.reshape(-1, cout)
    + bias`` is the layer's pre-activation output (strides, dilation, 'same' and 'valid' padding)."""
    _check_patchable(layer)
    patches = _patches_4d(x, layer)
    return patches.numpy().reshape(-1, patches.shape[-1])


def pivot_order(a) -> tuple[np.ndarray, np.ndarray]:
    """Pivoted QR of ``a`` (rows x units, in float64): ``order`` lists the units most linearly independent first and
    ``diag[i] = |R_ii|`` is that of ``order[i]`` (non-increasing; zero past ``min(rows, units)``)."""
    a = np.asarray(a, np.float64)
    if a.ndim != 2 or a.shape[1] == 0:
        raise InvalidArgumentError(f"pivot_order needs a (rows x units) matrix with units, got shape {a.shape}")
    if a.shape[0] == 0:
        return np.arange(a.shape[1]), np.zeros(a.shape[1])
    r, order = scipy.linalg.qr(a, mode="r", pivoting=True)
    diag = np.zeros(a.shape[1])
    k = min(r.shape)
    diag[:k] = np.abs(np.diag(r[:k, :k]))
    return order.astype(np.int64), diag


def _solve(gram, cross, w0, ridge: float) -> np.ndarray:
    """argmin ||P W - Z||^2 + lam ||W - w0||^2 from ``gram = P^T P`` and ``cross = P^T Z``."""
    lam = ridge * float(np.mean(np.diag(gram))) if gram.size else 0.0
    if lam <= 0:  # all-zero inputs: every W fits alike, the nearest to w0 is w0
        return np.array(w0, np.float64)
    system = gram + lam * np.eye(gram.shape[0])
    return scipy.linalg.solve(system, cross + lam * np.asarray(w0, np.float64), assume_a="pos")


def refit(p, z, w0, ridge: float = RIDGE) -> np.ndarray:
    """The least-squares weights (kept cols x cout) minimising ``||P W - Z||^2 + lam ||W - w0||^2`` with ``lam =
    ridge * mean(diag(P^T P))``, from the normal equations in float64: defined when rows < cols, and ``w0`` itself
    when ``P w0 = Z``."""
    p, z = np.asarray(p, np.float64), np.asarray(z, np.float64)
    if p.ndim != 2 or z.shape != (p.shape[0], np.shape(w0)[-1]) or np.shape(w0)[0] != p.shape[1]:
        raise InvalidArgumentError(f"refit needs P (rows x cols), Z (rows x cout) and w0 (cols x cout); got "
                                   f"{p.shape}, {z.shape} and {np.shape(w0)}")
    return _solve(p.T @ p, p.T @ z, w0, ridge)


class _RunningR:
    """The triangular factor of rows stacked batch by batch: pivoted QR of it gives that of all the rows."""

    def __init__(self, units: int):
        self.r = np.zeros((0, units))
        self.live = np.zeros(units, bool)  # columns with a non-zero value

    def add(self, rows: np.ndarray) -> None:
        if rows.size:
            self.live |= (rows != 0).any(axis=0)
            self.r = scipy.linalg.qr(np.vstack([self.r, rows]), mode="r")[0][: rows.shape[1]]


def _positions(total: int, max_rows: int, seed: int, batch: int, consumer: int) -> np.ndarray:
    """The sampled rows of one consumer on one batch: the same for the original and every pruned model."""
    if total <= max_rows:
        return np.arange(total)
    rng = np.random.default_rng([seed, batch, consumer])
    return np.sort(rng.choice(total, size=max_rows, replace=False))


def _is_refittable(layer) -> bool:
    return isinstance(layer, keras.layers.Conv2D) and kind_of(layer).name == "conv" and \
        layer.padding in ("same", "valid") and getattr(layer, "groups", 1) in (1, None)


def _output_size(size: int, kernel: int, stride: int, rate: int, padding: str) -> tuple[int, int]:
    """(output size, padding before) of one spatial axis, as TensorFlow's convolutions and extract_patches pad."""
    span = (kernel - 1) * rate + 1
    if padding == "valid":
        return -(-(size - span + 1) // stride), 0
    out = -(-size // stride)
    return out, max((out - 1) * stride + span - size, 0) // 2


def _output_positions(x_shape, layer) -> int:
    (kh, kw), (sh, sw), (rh, rw) = layer.kernel_size, layer.strides, layer.dilation_rate
    ho, _ = _output_size(int(x_shape[1]), kh, sh, rh, layer.padding)
    wo, _ = _output_size(int(x_shape[2]), kw, sw, rw, layer.padding)
    return int(x_shape[0]) * ho * wo


def _sampled_patches(x, layer, rows, columns=None) -> np.ndarray:
    """Rows ``rows`` (in output order) of :func:`conv_patches` ``(x, layer)``, only columns ``columns`` (all when
    None), in float64, gathered at the sampled positions alone (the same values: patches are copies of inputs)."""
    x = np.asarray(x, np.float32)
    n, h, w, c = x.shape
    (kh, kw), (sh, sw), (rh, rw) = layer.kernel_size, layer.strides, layer.dilation_rate
    ho, top = _output_size(h, kh, sh, rh, layer.padding)
    wo, left = _output_size(w, kw, sw, rw, layer.padding)
    if layer.padding == "same":  # zeros around, as the conv pads (enough on every side)
        x = np.pad(x, ((0, 0), (top, (kh - 1) * rh + sh), (left, (kw - 1) * rw + sw), (0, 0)))
    b, i, j = np.unravel_index(np.asarray(rows, np.int64), (n, ho, wo))
    columns = np.arange(kh * kw * c) if columns is None else np.asarray(columns, np.int64)
    tap, channel = np.divmod(columns, c)
    taps = np.unique(tap)  # one (rows x channels) slice per tap that a column needs
    stacked = np.concatenate([x[b, i * sh + (t // kw) * rh, j * sw + (t % kw) * rw] for t in taps], axis=1)
    return stacked[:, np.searchsorted(taps, tap) * c + channel].astype(np.float64)


def _centre_columns(layer, channels: int) -> np.ndarray:
    kh, kw = layer.kernel_size
    return ((kh // 2) * kw + kw // 2) * channels + np.arange(channels)


class _Sampler:
    """Samples of the tensors a group's consumers read, from one model (the graph of ``coupling``)."""

    def __init__(self, coupling: Coupling, max_rows: int, seed: int):
        self.coupling, self.max_rows, self.seed = coupling, max_rows, seed
        self.index = {node.id: i for i, node in enumerate(coupling.graph)}

    def consumers(self, group: ChannelGroup) -> list[tuple[str, TensorRef]]:
        graph = self.coupling.graph
        found = []
        for name in group.consumers:
            ref = graph.node(name).inputs[0]
            if ref in group.index_maps:
                found.append((name, ref))
        return found

    def conv_rows(self, layer, value, batch: int, name: str) -> np.ndarray:
        """The sampled output positions of conv ``layer`` (named ``name``) on ``value``, batch ``batch``: the same
        for the original and every pruned model."""
        return _positions(_output_positions(value.shape, layer), self.max_rows, self.seed, batch, self.index[name])

    def rows(self, layer, value, batch: int, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(sampled rows, their input-channel values) of consumer ``layer`` reading ``value``: centre taps of
        sampled output positions for a conv, sampled input positions otherwise."""
        if _is_refittable(layer):
            rows = self.conv_rows(layer, value, batch, name)
            return rows, _sampled_patches(value, layer, rows, _centre_columns(layer, int(value.shape[-1])))
        flat = tf.reshape(value, (-1, value.shape[-1]))
        rows = _positions(int(flat.shape[0]), self.max_rows, self.seed, batch, self.index[name])
        return rows, tf.gather(flat, rows).numpy().astype(np.float64)

    def selection(self, model: keras.Model, groups: Sequence[ChannelGroup], batches) -> dict[str, _RunningR]:
        """Per group, the running factor of its unit columns over every consumer's samples on ``batches``, from
        one pass of ``model`` per batch for all the groups."""
        running = {group.name: _RunningR(group.size) for group in groups}
        reads = [(group, name, ref) for group in groups for name, ref in self.consumers(group)]
        names = list(dict.fromkeys(name for _, name, _ in reads))
        if not names:
            return running
        probe = keras.Model(model.inputs, [model.get_layer(n).input for n in names])
        for b, (x, _) in enumerate(batches):
            values = probe(tf.convert_to_tensor(x, tf.float32), training=False)
            values = dict(zip(names, values if isinstance(values, (list, tuple)) else [values]))
            samples = {n: self.rows(model.get_layer(n), values[n], b, n)[1] for n in names}
            for group, name, ref in reads:
                index_map = group.index_maps[ref]
                running[group.name].add(np.vstack([samples[name][:, index_map[:, j]]
                                                   for j in range(index_map.shape[1])]))
        return running


def _pivots(running: _RunningR) -> tuple[np.ndarray, np.ndarray]:
    """(order, |R_ii| per unit) of the running factor; units whose columns are all zero come last with 0."""
    units = running.live.size
    if not running.r.shape[0]:
        return np.arange(units), np.zeros(units)
    order, diag = pivot_order(running.r)
    per_unit = np.zeros(units)
    per_unit[order] = diag
    per_unit[~running.live] = 0
    dead = ~running.live[order]
    order = np.concatenate([order[~dead], order[dead]])
    return order, per_unit


def qr_rows(model: keras.Model, coupling: Coupling, batches, max_rows_per_batch: int = MAX_ROWS_PER_BATCH,
            seed: int = 0) -> dict[str, np.ndarray]:
    """Per group, (producers x units) with identical rows: each unit's ``|R_ii|`` at its pivot position on
    ``model``'s current weights (``coupling`` is of its architecture), divided by the mean over live units; a unit
    whose columns are all zero (already pruned) scores 0. The layout of :func:`edgeprune.prune.taylor.taylor_rows`."""
    batches = _checked_batches(batches)
    sampler = _Sampler(coupling, _checked_rows(max_rows_per_batch), seed)
    factors = sampler.selection(model, list(coupling.groups.values()), batches)
    rows = {}
    for name, group in coupling.groups.items():
        running = factors[name]
        _, per_unit = _pivots(running)
        live = per_unit[running.live]
        score = per_unit / live.mean() if live.size and live.mean() > 0 else np.zeros(group.size)
        rows[name] = np.tile(score, (len(group.producers), 1))
    return rows


def qr_batches(pool: PairSet, batch_size: int, patch: int, seed: int = 0, batches: int = BATCHES) -> list:
    """``batches`` random (input, target) batches of ``batch_size`` training patches of ``pool``, drawn
    reproducibly from ``seed`` (kept in memory: selection and every re-fit pass over the same batches)."""
    rng = np.random.default_rng(seed)
    return [random_crops(pool, patch, batch_size, rng) for _ in range(batches)]


def qr_importance(model: keras.Model, coupling: Coupling, pool: PairSet, batch_size: int, patch: int,
                  seed: int = 0, batches: int = BATCHES, sample_seed: int = 0) -> dict[str, np.ndarray]:
    """:func:`qr_rows` of ``model`` on :func:`qr_batches` of ``pool`` (the loop's importance, like
    :func:`edgeprune.prune.taylor.taylor_importance`)."""
    return qr_rows(model, coupling, qr_batches(pool, batch_size, patch, seed, batches), seed=sample_seed)


def _checked_batches(batches) -> list:
    batches = list(batches)
    if not batches:
        raise InvalidArgumentError("no sample batches: give at least one (input, target) batch of training data")
    return batches


def _checked_rows(max_rows) -> int:
    if isinstance(max_rows, bool) or not isinstance(max_rows, (int, np.integer)) or max_rows < 1:
        raise InvalidArgumentError(f"max_rows_per_batch must be an integer >= 1, got {max_rows!r}")
    return int(max_rows)


def _checked_counts(coupling: Coupling, counts: Mapping[str, int]) -> dict[str, int]:
    if not isinstance(counts, Mapping):
        raise InvalidArgumentError(f"counts must map group names to unit counts, got {type(counts).__name__}")
    for name, count in counts.items():
        if name not in coupling.groups:
            raise InvalidArgumentError(f"counts names group '{name}', which the model does not have: use one of "
                                       f"{', '.join(coupling.groups)}")
        size = coupling.groups[name].size
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or not 1 <= count <= size:
            raise InvalidArgumentError(f"counts['{name}'] is {count!r}: keep an integer number of units between 1 "
                                       f"and {size}")
    return {n: int(c) for n, c in counts.items()}


class _Targets:
    """The ORIGINAL model's pre-activation outputs of the re-fitted convs at their sampled positions, per batch.
    The original does not change, so one pass of it serves a run of consumers (as many, in processing order, as fit
    ``TARGET_BYTES``; at least one) instead of one pass per consumer: the same values, a fraction of the passes."""

    def __init__(self, original: keras.Model, order: Sequence[str], batches, sampler: _Sampler):
        """``order``: the convs as they will be asked for, a conv reading two groups (behind a concatenation)
        once per group; its targets are kept until its last use."""
        self.original, self.batches, self.sampler = original, batches, sampler
        self.order, self.uses = list(dict.fromkeys(order)), Counter(order)
        self.budget = TARGET_BYTES
        self.ready: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
        self.passes = 0

    def of(self, name: str) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per batch, (sampled rows, target outputs there) of conv ``name``."""
        if name not in self.ready:
            self._compute_from(name)
        self.uses[name] -= 1
        return self.ready[name] if self.uses[name] > 0 else self.ready.pop(name)

    def _compute_from(self, name: str) -> None:
        chunk, size = [], 0
        for n in self.order[self.order.index(name):]:
            if n in self.ready or self.uses[n] <= 0:
                continue
            cost = self.sampler.max_rows * self.original.get_layer(n).filters * 8 * len(self.batches)
            if chunk and size + cost > self.budget:
                break
            chunk.append(n)
            size += cost
        layers = [self.original.get_layer(n) for n in chunk]
        weights = []
        for layer in layers:
            kernel, *rest = [w.astype(np.float64) for w in layer.get_weights()]
            weights.append((kernel.reshape(-1, kernel.shape[-1]), rest[0] if rest else 0.0))
        probe = keras.Model(self.original.inputs, [layer.input for layer in layers])
        found = {n: [] for n in chunk}
        for b, (x, _) in enumerate(self.batches):
            values = probe(tf.convert_to_tensor(x, tf.float32), training=False)
            values = values if isinstance(values, (list, tuple)) else [values]
            for n, layer, value, (kernel, bias) in zip(chunk, layers, values, weights):
                rows = self.sampler.conv_rows(layer, value, b, n)
                found[n].append((rows, _sampled_patches(value, layer, rows) @ kernel + bias))
        self.passes += 1
        self.ready.update(found)


def _fit_consumer(copy, name: str, kept_in: np.ndarray, batches, targets: list, ridge: float) -> dict:
    """Re-fits conv ``name`` of ``copy`` over its kept input channels ``kept_in`` against the original's
    pre-activation outputs at the same positions (``targets``: per batch, rows and outputs, from
    :class:`_Targets`); returns the relative errors before and after."""
    layer = copy.get_layer(name)
    kernel, *rest = layer.get_weights()
    bias = rest[0].astype(np.float64) if rest else 0.0
    kh, kw, cin, cout = kernel.shape
    cols = (np.arange(kh * kw)[:, None] * cin + kept_in[None, :]).ravel()
    current_probe = keras.Model(copy.inputs, layer.input)
    gram, cross = np.zeros((cols.size, cols.size)), np.zeros((cols.size, cout))
    target_sq, z_sq = 0.0, 0.0
    for (x, _), (rows, z) in zip(batches, targets):
        p = _sampled_patches(current_probe(tf.convert_to_tensor(x, tf.float32), training=False), layer, rows, cols)
        target = z - bias
        gram += p.T @ p
        cross += p.T @ target
        target_sq += float(np.sum(target ** 2))
        z_sq += float(np.sum(z ** 2))
    w0 = kernel.reshape(-1, cout)[cols].astype(np.float64)
    w = _solve(gram, cross, w0, ridge)

    def error(weights):
        residual = np.sum(weights * (gram @ weights)) - 2 * np.sum(weights * cross) + target_sq
        return float(np.sqrt(max(residual, 0.0) / z_sq)) if z_sq > 0 else 0.0

    new_kernel = np.zeros((kh * kw * cin, cout), kernel.dtype)
    new_kernel[cols] = w
    layer.set_weights([new_kernel.reshape(kernel.shape), *rest])
    return {"refit": True, "error_before": error(w0), "error_after": error(w)}


def qr_reconstruct(model: keras.Model, coupling: Coupling, counts: Mapping[str, int], batches: Sequence,
                   ridge: float = RIDGE, max_rows_per_batch: int = MAX_ROWS_PER_BATCH,
                   seed: int = 0) -> tuple[keras.Model, dict[str, list[int]], dict[str, dict]]:
    """Prunes a copy of ``model`` (``coupling`` is its coupling; ``model`` is not changed) to ``counts[g]`` units
    per group (groups not named keep all) by pivoted QR selection and least-squares re-fits of the consuming convs
    on ``batches`` ((input, target) arrays of training data), group by group in graph order.

    Returns the copy (removed channels exactly zero, so ``slim(copy, plan)`` computes the same), ``keep`` (every
    group -> sorted kept units) and ``details`` (per processed group: kept, size, and per consumer whether it was
    re-fitted, with the relative reconstruction error ``||P W - Z|| / ||Z||`` on the sampled rows before the re-fit
    (kept columns, current weights) and after it)."""
    counts = _checked_counts(coupling, counts)
    batches = _checked_batches(batches)
    if not isinstance(ridge, (int, float)) or isinstance(ridge, bool) or not ridge > 0:
        raise InvalidArgumentError(f"ridge must be a number > 0, got {ridge!r}")
    sampler = _Sampler(coupling, _checked_rows(max_rows_per_batch), seed)
    copy = plain_copy(model)
    sizes = {n: g.size for n, g in coupling.groups.items()}
    targets = _Targets(model, [c for n, g in coupling.groups.items() if n in counts for c, _ in sampler.consumers(g)
                               if _is_refittable(model.get_layer(c))], batches, sampler)
    keep: dict[str, list[int]] = {}
    details: dict[str, dict] = {}
    for name, group in coupling.groups.items():
        if name not in counts:
            continue
        order, _ = _pivots(sampler.selection(copy, [group], batches)[name])
        keep[name] = sorted(int(u) for u in order[: counts[name]])
        ChannelMasks(coupling, PruningPlan(model.name, fingerprint(coupling), sizes, dict(keep))).apply(copy)
        kept = coupling.kept_channels(keep)
        consumers = {}
        for consumer, ref in sampler.consumers(group):
            layer = copy.get_layer(consumer)
            if _is_refittable(layer):
                consumers[consumer] = _fit_consumer(copy, consumer, kept[ref], batches, targets.of(consumer), ridge)
            else:
                consumers[consumer] = {"refit": False,
                                       "reason": f"{type(layer).__name__} is not re-fitted (only Conv2D consumers "
                                                 "are); it only loses the removed input channels"}
        details[name] = {"kept": counts[name], "size": group.size, "consumers": consumers}
    return copy, {n: keep.get(n, list(range(s))) for n, s in sizes.items()}, details
