"""The numeric check every import passes before anything is written: our model against the original network, run by
its own framework, on a real photo.

The measure is the largest absolute difference between the two outputs divided by the largest magnitude of the
original's output (elementwise ratios are meaningless where an output is near zero). Both run in fp32.
"""

import numpy as np

from edgeprune.checkpoints.converted import Converted
from edgeprune.data.photos import photo_input
from edgeprune.core.errors import ImportVerificationError

MAX_RELATIVE_DIFFERENCE = 1e-5


def compare(ours: np.ndarray, theirs: np.ndarray) -> dict:
    """The difference of two outputs of the same shape: max abs difference, the reference's peak, their ratio."""
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    if ours.shape != theirs.shape:
        raise ImportVerificationError(f"the imported model's output has shape {list(ours.shape)} but the original "
                                      f"network's has {list(theirs.shape)}: the import is wrong, nothing was written")
    diff = float(np.max(np.abs(ours - theirs))) if ours.size else 0.0
    peak = float(np.max(np.abs(theirs))) if theirs.size else 0.0
    relative = diff / peak if peak > 0 else diff
    return {"max_abs_difference": diff, "reference_peak": peak, "max_relative_difference": relative}


def verify(converted: Converted, limit: float = MAX_RELATIVE_DIFFERENCE) -> dict:
    """Runs both networks on a real photo shaped for the model (:func:`photo_input`) and returns the check's record;
    raises :class:`ImportVerificationError` when the outputs differ by more than ``limit`` (relative to the peak)."""
    height, width = converted.verify_size
    channels = int(converted.model.input_shape[-1])
    x, description = photo_input(height, width, channels)
    ours = converted.model(x, training=False).numpy()
    theirs = converted.reference(x)
    record = {"input": description, "input_shape": list(x.shape), "reference": converted.framework,
              **compare(ours, theirs), "limit": limit}
    record["passed"] = bool(np.isfinite(record["max_relative_difference"])
                            and record["max_relative_difference"] <= limit)
    if not record["passed"]:
        raise ImportVerificationError(
            f"the imported model differs from the original {converted.architecture} network ({converted.framework}) "
            f"on {description}: max relative difference {record['max_relative_difference']:.3g} > {limit:g}; "
            f"nothing was written (is the configuration right? see --help)")
    return record
