"""Channel importance: a group's units -> scores (higher = more important).

``l1_scores`` sums, over the group's producer layers, each unit's filter L1 norm divided by the mean L1 norm of
that layer's filters, so layers of different scale contribute comparably (Torch-Pruning's group importance with
per-layer normalisation; the paper's "filter magnitude normalised so layers are comparable").
"""

import numpy as np

from edgeprune.coupling import ChannelGroup, Coupling
from edgeprune.graph import TensorRef
from edgeprune.layers import TRANSPOSED


def filter_norms(layer, ord: int = 1) -> np.ndarray:
    """Norm of each output channel's filter of a mixing layer."""
    kernel = layer.get_weights()[0] if not hasattr(layer, "pointwise_kernel") else layer.pointwise_kernel.numpy()
    axis_out = -2 if isinstance(layer, TRANSPOSED) else -1
    k = np.moveaxis(kernel, axis_out, 0).reshape(kernel.shape[axis_out], -1)
    return np.linalg.norm(k, ord=ord, axis=1) if ord != 1 else np.abs(k).sum(axis=1)


def l1_scores(coupling: Coupling, group: ChannelGroup, ord: int = 1) -> np.ndarray:
    scores = np.zeros(group.size)
    for name in group.producers:
        node = coupling.graph.node(name)
        ref = TensorRef(node.id, 0)
        norms = filter_norms(node.layer, ord)
        norms = norms / (norms.mean() + 1e-12)
        scores += norms[group.index_maps[ref]].sum(axis=1)
    return scores
