"""Coupled channel groups of a functional model: which channels must be pruned together, with index maps.

Every channel of every layer output is a vertex; a layer that ties an input channel to an output channel adds an
edge (see :mod:`edgeprune.graph.layer_table` for the rules: residual additions tie all their inputs, Concatenate ties at
offsets, depth-to-space ties ``r*r`` input channels to one output channel, ...). A connected component is one
prunable *unit*: removing it removes each of its channels from every tensor it touches. Units that touch the same
tensors in the same numbers form a *group* (the EDSR residual trunk is one group of 64 units). Components that touch
a model input, a model output or a layer edgeprune cannot reason about are frozen.
"""

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from edgeprune.core.errors import UnsupportedModelError
from edgeprune.graph.model_graph import ModelGraph, TensorRef
from edgeprune.graph.layer_table import role_of


@dataclass(frozen=True)
class ChannelGroup:
    """Units that are pruned alike. ``index_maps[t][u]`` lists the channels of tensor ``t`` that unit ``u`` owns."""

    name: str
    size: int
    index_maps: dict[TensorRef, np.ndarray]
    producers: tuple[str, ...]
    consumers: tuple[str, ...]

    @property
    def tensors(self) -> tuple[TensorRef, ...]:
        return tuple(self.index_maps)

    def channels_per_unit(self, ref: TensorRef) -> int:
        return self.index_maps[ref].shape[1]


class Coupling:
    """The channel groups of a model. Build once per model; it does not change the model."""

    def __init__(self, model_or_graph):
        self.graph = model_or_graph if isinstance(model_or_graph, ModelGraph) else ModelGraph(model_or_graph)
        g = self.graph
        self.channels: dict[TensorRef, int] = {}
        for node in g:
            for ref in g.output_refs(node):
                c = g.output_channels(ref)
                self.channels[ref] = 0 if c is None else int(c)
        refs = list(self.channels)
        self._offset = dict(zip(refs, np.cumsum([0] + [self.channels[r] for r in refs[:-1]]).tolist()))
        total = sum(self.channels.values())
        self.frozen_reasons: list[str] = []
        frozen = np.zeros(total, bool)
        edges_u: list[np.ndarray] = []
        edges_v: list[np.ndarray] = []

        def ids(ref, channels=None):
            base = self._offset[ref]
            return base + (np.arange(self.channels[ref]) if channels is None else np.asarray(channels))

        def freeze(ref_list, reason=None):
            for ref in ref_list:
                frozen[ids(ref)] = True
            if reason and reason not in self.frozen_reasons:
                self.frozen_reasons.append(reason)

        def tie(a, b):
            edges_u.append(np.asarray(a))
            edges_v.append(np.asarray(b))

        for node in g:
            outs = g.output_refs(node)
            if node.is_input:
                freeze(outs)
                continue
            ins = list(node.inputs)
            role = role_of(node.layer)
            if any(self.channels[r] == 0 for r in ins + outs):
                freeze(ins + outs, f"{node.type} '{node.id}' has a dynamic channel count")
                continue
            if g.is_shared(node):
                freeze(ins + outs, f"{node.type} '{node.layer.name}' is called more than once (shared weights)")
                continue
            if role.kind == "frozen":
                freeze(ins + outs, role.reason)
                continue
            if role.kind == "mixing":
                continue
            out = outs[0]
            c_out = self.channels[out]
            if role.kind == "depthwise":
                m = node.layer.depth_multiplier
                c_in = self.channels[ins[0]]
                src = np.repeat(np.arange(c_in), m)
                tie(ids(ins[0], src), ids(out, np.arange(c_in * m)))
            elif role.kind in ("preserving", "reshape", "elementwise_op", "merge"):
                for ref in ins:
                    if self.channels[ref] == c_out:
                        tie(ids(ref), ids(out))
                    elif self.channels[ref] == 1 and role.kind in ("merge", "elementwise_op"):
                        freeze([ref])  # a broadcast operand
                    else:
                        freeze(ins + outs, f"{node.type} '{node.id}' changes the channel count "
                                           f"({self.channels[ref]} -> {c_out})")
                        break
            elif role.kind == "concat":
                rank = len(node.layer.output_shape)
                if node.layer.axis in (-1, rank - 1):
                    offset = 0
                    for ref in ins:
                        tie(ids(ref), ids(out, offset + np.arange(self.channels[ref])))
                        offset += self.channels[ref]
                else:
                    for ref in ins:
                        tie(ids(ref), ids(out))
            elif role.kind == "depth_to_space":
                r2 = node.layer.block_size ** 2
                src = (np.arange(r2)[:, None] * c_out + np.arange(c_out)[None, :]).ravel()
                tie(ids(ins[0], src), ids(out, np.tile(np.arange(c_out), r2)))
        for ref in g.outputs:
            freeze([ref])

        u = np.concatenate(edges_u) if edges_u else np.zeros(0, int)
        v = np.concatenate(edges_v) if edges_v else np.zeros(0, int)
        adjacency = coo_matrix((np.ones(len(u), np.int8), (u, v)), shape=(total, total))
        _, labels = connected_components(adjacency, directed=False)
        frozen_labels = np.unique(labels[frozen])
        self.groups: dict[str, ChannelGroup] = self._collect_groups(refs, labels, frozen_labels)

    def _collect_groups(self, refs, labels, frozen_labels) -> dict[str, ChannelGroup]:
        g = self.graph
        order = {ref: i for i, ref in enumerate(refs)}
        members: dict[int, dict[TensorRef, list[int]]] = defaultdict(lambda: defaultdict(list))
        frozen_set = set(frozen_labels.tolist())
        for ref in refs:
            base = self._offset[ref]
            for c in range(self.channels[ref]):
                lab = int(labels[base + c])
                if lab not in frozen_set:
                    members[lab][ref].append(c)
        by_signature: dict[tuple, list[int]] = defaultdict(list)
        for lab, tensors in members.items():
            signature = tuple(sorted(((order[r], len(chs)) for r, chs in tensors.items())))
            by_signature[signature].append(lab)

        groups = []
        for signature, labs in by_signature.items():
            tensors = [refs[i] for i, _ in signature]
            first = tensors[0]
            labs.sort(key=lambda lab: min(members[lab][first]))
            index_maps = {t: np.array([sorted(members[lab][t]) for lab in labs], dtype=np.int64) for t in tensors}
            in_group = set(tensors)
            producers, consumers = [], []
            for node in g:
                if node.is_input or role_of(node.layer).kind not in ("mixing", "depthwise"):
                    continue
                if any(r in in_group for r in g.output_refs(node)) and role_of(node.layer).kind == "mixing":
                    producers.append(node.id)
                if any(r in in_group for r in node.inputs):
                    consumers.append(node.id)
            if not producers:
                continue  # channels that no layer of ours creates cannot be removed
            groups.append(ChannelGroup(producers[0], len(labs), index_maps, tuple(producers), tuple(consumers)))
        position = {node.id: i for i, node in enumerate(g)}
        groups.sort(key=lambda grp: position[grp.name])
        return {grp.name: grp for grp in groups}

    def kept_channels(self, keep: dict[str, "np.ndarray | list[int]"]) -> dict[TensorRef, np.ndarray]:
        """Kept channel indices (ascending) of every tensor when group ``name`` keeps units ``keep[name]``."""
        removed: dict[TensorRef, set] = defaultdict(set)
        for name, kept_units in keep.items():
            group = self.groups[name]
            drop = np.setdiff1d(np.arange(group.size), np.asarray(kept_units, dtype=np.int64))
            for ref, index_map in group.index_maps.items():
                removed[ref].update(index_map[drop].ravel().tolist())
        return {
            ref: np.array(sorted(set(range(c)) - removed[ref]), dtype=np.int64) if removed[ref]
            else np.arange(c, dtype=np.int64)
            for ref, c in self.channels.items()
        }

    def group(self, name: str) -> ChannelGroup:
        try:
            return self.groups[name]
        except KeyError:
            raise UnsupportedModelError(f"the model has no prunable channel group '{name}'") from None
