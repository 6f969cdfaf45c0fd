"""Coarse pruning with random masks: feature maps and k x k kernels, the least damaging of N candidates (Anwar &
Sung, "Coarse Pruning of Convolutional Neural Networks with Random Masks", 2016).

Two granularities. *Feature-map* (``channel``) pruning removes whole units of the channel groups, which the engine
removes physically: a random allocation (groups narrowed one allowed width at a time, in random order, to the level)
of random units. *Kernel* pruning removes single k x k kernels, the (input channel, output channel) connections of
a conv; a kernel mask per conv, ``True`` = kept, over the layer's full input and output channels. ``both`` spends half
of a step's level on feature maps and the rest on kernels, as the paper finds best.

A step draws ``candidates`` random masks at the step's level (subsets of what is still kept, so pruning is monotone),
measures the L1 loss of each masked model on one batch of *training* patches (never the validation images the
quality gate uses) and keeps the least damaging ("least adversarial"); the prune loop then fine-tunes it and gates it
like any other proposal (:mod:`edgeprune.prune.loop`). The first draw is among those compared, so the chosen mask
never scores worse than it.

What kernel sparsity buys on a phone: nothing, by itself. A dense TFLite conv multiplies the zero kernels too, so
the loop steps its level on the MAC *counted with zero kernels skipped* (:func:`sparse_mac`), and the report gives
the MAC the exported dense model really executes beside it. What can be exploited is exported: a unit whose every
reader (conv consumer) has all its kernels from it pruned is removed, and so is one whose every producer has all
kernels to it pruned (its bias is then masked to zero too, so the channel is exactly zero) (:func:`exploitable_keep`).
"""

from dataclasses import dataclass

import numpy as np

from edgeprune.core.runtime import keras, tf
from edgeprune.core.errors import InvalidArgumentError
from edgeprune.graph.coupling import Coupling
from edgeprune.graph.layer_table import keeps_zero
from edgeprune.graph.model_graph import TensorRef
from edgeprune.prune import masking
from edgeprune.prune.importance import depth_floor_units
from edgeprune.prune.masking import ChannelMasks
from edgeprune.prune.plan import PruningPlan
from edgeprune.prune.proposers import CANDIDATES, GRANULARITIES  # noqa: F401  (the coarse search's registry)



def check_search(granularity: str, candidates: int) -> None:
    """Raises InvalidArgumentError unless ``granularity`` and ``candidates`` describe a search."""
    if granularity not in GRANULARITIES:
        raise InvalidArgumentError(f"granularity must be one of {', '.join(GRANULARITIES)}, got {granularity!r}")
    if isinstance(candidates, bool) or not isinstance(candidates, int) or candidates < 1:
        raise InvalidArgumentError(f"the number of candidate masks must be an integer >= 1, got {candidates!r}")


def kernel_convs(coupling: Coupling) -> list[str]:
    """The layers kernel masks apply to: plain 2-D convolutions (one group; not depthwise, separable or transposed)."""
    plain = keras.layers.Conv2D
    other = (keras.layers.Conv2DTranspose, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)
    return [node.id for node in coupling.graph if not node.is_input and isinstance(node.layer, plain)
            and not isinstance(node.layer, other) and node.layer.groups == 1]


def full_kernels(coupling: Coupling) -> dict[str, np.ndarray]:
    """Every kernel kept: per conv of :func:`kernel_convs`, an all-True (input channels x output channels) mask."""
    out = {}
    for name in kernel_convs(coupling):
        node = coupling.graph.node(name)
        out[name] = np.ones((coupling.channels[node.inputs[0]], coupling.channels[TensorRef(name, 0)]), bool)
    return out


def kernels_to_json(kernels: dict[str, np.ndarray] | None) -> dict[str, list[int]] | None:
    """The pruned kernels of each conv as flat indices into its (in, out) mask (the loop checkpoint's form)."""
    if kernels is None:
        return None
    return {name: np.flatnonzero(~mask).tolist() for name, mask in kernels.items()}


def kernels_from_json(coupling: Coupling, data: dict[str, list[int]] | None) -> dict[str, np.ndarray] | None:
    """The masks :func:`kernels_to_json` wrote, on the full masks of ``coupling``'s model (a ValueError names a
    conv or index that is not this model's)."""
    if data is None:
        return None
    kernels = full_kernels(coupling)
    for name, pruned in data.items():
        if name not in kernels:
            raise ValueError(f"kernel mask of {name!r}, which is not a conv of this model")
        flat = kernels[name].reshape(-1)
        index = np.asarray(pruned, dtype=np.int64)
        if index.size and (index.min() < 0 or index.max() >= flat.size):
            raise ValueError(f"kernel mask of {name!r} has indices outside its {flat.size} kernels")
        flat[index] = False
    return kernels


@dataclass(frozen=True)
class KernelCosts:
    """MAC of one k x k kernel of each conv at the cost figures' input size (``kh * kw * Ho * Wo``)."""

    per_kernel: dict[str, float]
    base_mac: float

    @classmethod
    def of(cls, coupling: Coupling, base_cost) -> "KernelCosts":
        """From the baseline's :class:`~edgeprune.graph.cost.CostReport` (dense: MAC = Ho Wo kh kw Cin Cout)."""
        layers = {c.name: c for c in base_cost.layers}
        per_kernel = {}
        for name in kernel_convs(coupling):
            node = coupling.graph.node(name)
            pairs = coupling.channels[node.inputs[0]] * coupling.channels[TensorRef(name, 0)]
            per_kernel[name] = layers[name].mac / pairs if name in layers and pairs else 0.0
        return cls(per_kernel, float(base_cost.totals.mac))


def sparse_mac(coupling: Coupling, oracle, costs: KernelCosts, keep: dict[str, list[int]],
               kernels: dict[str, np.ndarray] | None) -> float:
    """The MAC ratio with pruned kernels counted as skipped: the dense MAC of the plan ``keep`` (``oracle``, a
    :class:`~edgeprune.prune.oracle.CostOracle`) less every pruned kernel between kept channels."""
    mac = oracle.mac_ratio(keep) * costs.base_mac
    if kernels:
        kept = coupling.kept_channels(keep)
        for name, mask in kernels.items():
            node = coupling.graph.node(name)
            live = mask[np.ix_(kept[node.inputs[0]], kept[TensorRef(name, 0)])]
            mac -= (live.size - int(live.sum())) * costs.per_kernel[name]
    return mac / costs.base_mac


def pruned_kernel_fraction(kernels: dict[str, np.ndarray] | None) -> float:
    """The fraction of all conv kernels pruned (0 without kernel masks)."""
    if not kernels:
        return 0.0
    return 1 - sum(int(m.sum()) for m in kernels.values()) / sum(m.size for m in kernels.values())


def _stays_zero(coupling: Coupling, name: str) -> bool:
    """Whether a unit of group ``name`` that its producers write as zeros is zero in every tensor of the group:
    every layer writing one of its tensors keeps zero channels zero (:func:`~edgeprune.graph.layer_table.keeps_zero`)."""
    tensors = {ref.node for ref in coupling.groups[name].index_maps}
    return all(keeps_zero(coupling.graph.node(node).layer) for node in tensors)


def exploitable_keep(coupling: Coupling, keep: dict[str, list[int]],
                     kernels: dict[str, np.ndarray] | None) -> dict[str, list[int]]:
    """``keep`` without the units kernel masks have made dead, so they are removed physically: a unit none of whose
    conv readers keeps a kernel from it (its values are never used), or, where every layer on the group's tensors
    keeps zero channels zero, none of whose producers keeps a kernel to it (with its biases masked it is exactly
    zero). Every group keeps at least one unit. Removing them changes no output (tests/test_coarse.py)."""
    if not kernels:
        return {n: list(u) for n, u in keep.items()}
    out = {}
    for name, units in keep.items():
        group = coupling.groups[name]
        readers = [(kernels.get(c), coupling.graph.node(c).inputs[0]) for c in group.consumers
                   if coupling.graph.node(c).inputs[0] in group.index_maps]
        writers = [(kernels.get(p), TensorRef(p, 0)) for p in group.producers]
        zero_path = _stays_zero(coupling, name)
        alive = []
        for u in units:
            read = not readers or any(mask is None or mask[group.index_maps[ref][u]].any() for mask, ref in readers)
            written = not zero_path or any(mask is None or mask[:, group.index_maps[ref][u]].any()
                                           for mask, ref in writers)
            if read and written:
                alive.append(u)
        out[name] = alive or [units[0]]
    return out


class CoarseMasks(ChannelMasks):
    """A plan's channel masks and kernel masks, imposed through the same tfmot wrappers and hooks as
    :class:`~edgeprune.prune.masking.ChannelMasks` (so :func:`~edgeprune.train.fit.fit` and the loop's
    gate use it unchanged): a pruned kernel is zero in the kernel and in tfmot's mask, and the bias of an
    output channel whose every kernel is pruned is kept at zero after every step."""

    def __init__(self, coupling: Coupling, plan: PruningPlan, kernels: dict[str, np.ndarray] | None):
        super().__init__(coupling, plan)
        self.kernels = kernels or {}

    def _targets(self, wrapped: keras.Model):
        yield from super()._targets(wrapped)
        for name, mask in self.kernels.items():
            if mask.all():
                continue
            layer = masking.inner(wrapped, name)
            tfmot_masks = {}
            try:
                tfmot_masks = masking.tfmot_adapter.mask_variables(wrapped.get_layer(masking.WRAPPER_PREFIX + name))
            except ValueError:
                pass
            rows, cols = np.nonzero(~mask)
            yield layer.kernel, (slice(None), slice(None), rows, cols), tfmot_masks.get(id(layer.kernel))
            dead = np.flatnonzero(~mask.any(axis=0))
            if dead.size and layer.use_bias:
                yield layer.bias, (dead,), tfmot_masks.get(id(layer.bias))


def random_counts(coupling: Coupling, oracle, keep: dict[str, list[int]], goal: float, floors: dict[str, int],
                  allowed: dict[str, list[int]], rng: np.random.Generator) -> dict[str, int]:
    """Units per group for one random feature-map mask at ``goal`` (a dense MAC ratio): groups drawn at random, each
    draw taking one group one width narrower (its next allowed width, or 1/16 of its size without alignment; never
    below its floor), until the plan's MAC is at most ``goal`` or no group can shrink. A random allocation, as the
    paper's random masks are; one narrower step of one group is the most it overshoots."""
    counts = {name: len(units) for name, units in keep.items()}

    def narrower(name):
        now, floor = counts[name], floors[name]
        if allowed.get(name):
            below = [w for w in allowed[name] if floor <= w < now]
            return max(below) if below else None
        step = max(1, coupling.groups[name].size // 16)
        return max(now - step, floor) if now > floor else None

    def mac(c):
        return oracle.mac_ratio({n: keep[n][:k] for n, k in c.items()})  # the MAC depends on the counts only

    while mac(counts) > goal:
        shrinkable = [n for n in counts if narrower(n) is not None]
        if not shrinkable:
            break
        name = shrinkable[int(rng.integers(len(shrinkable)))]
        counts[name] = narrower(name)
    return counts


def channel_candidate(keep: dict[str, list[int]], counts: dict[str, int], rng: np.random.Generator) -> dict:
    """A random subset of each group's kept units, of the given count."""
    return {name: sorted(int(u) for u in rng.choice(units, counts[name], replace=False)) if counts[name] < len(units)
            else list(units) for name, units in keep.items()}


def kernel_candidate(coupling: Coupling, oracle, costs: KernelCosts, keep: dict[str, list[int]],
                     kernels: dict[str, np.ndarray], goal: float, rng: np.random.Generator) -> dict:
    """``kernels`` with one fraction of every conv's kernels still kept between kept channels pruned at random: the
    smallest fraction (bisection over one random order per conv) whose :func:`sparse_mac` is at most ``goal``."""
    kept = coupling.kept_channels(keep)
    orders = {}
    for name, mask in kernels.items():
        node = coupling.graph.node(name)
        live = np.zeros_like(mask)
        live[np.ix_(kept[node.inputs[0]], kept[TensorRef(name, 0)])] = True
        candidates = np.flatnonzero((mask & live).reshape(-1))
        orders[name] = rng.permutation(candidates)

    def masks_at(fraction):
        out = {}
        for name, mask in kernels.items():
            flat = mask.reshape(-1).copy()
            order = orders[name]
            flat[order[: int(np.floor(fraction * order.size))]] = False
            out[name] = flat.reshape(mask.shape)
        return out

    lo, hi = 0.0, 1.0
    if sparse_mac(coupling, oracle, costs, keep, masks_at(hi)) > goal:
        return masks_at(hi)
    for _ in range(30):
        mid = (lo + hi) / 2
        if sparse_mac(coupling, oracle, costs, keep, masks_at(mid)) <= goal:
            hi = mid
        else:
            lo = mid
    return masks_at(hi)


@dataclass(frozen=True)
class Candidate:
    keep: dict[str, list[int]]
    kernels: dict[str, np.ndarray] | None
    loss: float


class CoarseSearch:
    """The loop's proposals for the coarse strategy: ``propose(level, keep, kernels, seed)`` draws the candidates at
    ``level`` (a fraction of the baseline's sparse MAC to remove) from what ``keep``/``kernels`` still keep, scores
    each on one batch of training data (``batches.draw``) with ``model``'s current weights and returns the least damaging."""

    def __init__(self, model: keras.Model, coupling: Coupling, oracle, base_cost, batches,
                 granularity: str = "both", candidates: int = CANDIDATES, depth_floor: float = 0.25, widths=None):
        check_search(granularity, candidates)
        self.model, self.coupling, self.oracle = model, coupling, oracle
        self.costs = KernelCosts.of(coupling, base_cost)
        self.batches = batches  # a batch source (edgeprune.prune.criteria): draw(rng) -> (input, target)
        self.granularity, self.candidates = granularity, candidates
        self.floors = {n: depth_floor_units(g.size, True, depth_floor) for n, g in coupling.groups.items()}
        self.allowed = ({n: widths.allowed(coupling, n) for n in coupling.groups}
                        if widths is not None and widths.aligns else {})
        self.full = PruningPlan.keep_all(coupling, model.name)
        self._wrapped = None

    def masks(self, keep: dict[str, list[int]], kernels) -> CoarseMasks:
        return CoarseMasks(self.coupling, PruningPlan(self.full.model, self.full.fingerprint, self.full.sizes, keep),
                           kernels)

    def loss(self, keep: dict[str, list[int]], kernels, batch) -> float:
        """The mean absolute error on ``batch`` ((input, target) arrays) of the current model under these masks."""
        if self._wrapped is None:
            self._wrapped = masking.wrap(self.model)
        self.masks(keep, kernels).impose(self._wrapped, self.model)
        x, y = batch
        out = self._wrapped(tf.convert_to_tensor(x), training=False)
        return float(tf.reduce_mean(tf.abs(out - y)).numpy())

    def draw(self, level: float, keep: dict[str, list[int]], kernels, rng: np.random.Generator):
        """One random candidate at ``level``: (keep, kernels)."""
        goal = 1 - level + 1e-12
        if self.granularity != "channel" and kernels is None:
            kernels = full_kernels(self.coupling)
        if self.granularity == "kernel":
            return {n: list(u) for n, u in keep.items()}, kernel_candidate(
                self.coupling, self.oracle, self.costs, keep, kernels, goal, rng)
        # both: feature maps take the dense MAC to 1 - level/2, then kernels the sparse MAC to 1 - level
        channel_goal = goal if self.granularity == "channel" else 1 - level / 2 + 1e-12
        counts = random_counts(self.coupling, self.oracle, keep, channel_goal, self.floors, self.allowed, rng)
        new_keep = channel_candidate(keep, counts, rng)
        if self.granularity == "channel":
            return new_keep, kernels
        return new_keep, kernel_candidate(self.coupling, self.oracle, self.costs, new_keep, kernels, goal, rng)

    def propose(self, level: float, keep: dict[str, list[int]], kernels, seed: int):
        """(best candidate, the losses of all candidates in draw order, the index of the best)."""
        rng = np.random.default_rng(seed)
        batch = self.batches.draw(rng)
        drawn = []
        for _ in range(self.candidates):
            new_keep, new_kernels = self.draw(level, keep, kernels, rng)
            drawn.append(Candidate(new_keep, new_kernels, self.loss(new_keep, new_kernels, batch)))
        losses = [c.loss for c in drawn]
        best = int(np.argmin(losses))
        return drawn[best], losses, best
