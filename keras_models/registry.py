"""Named reference configurations: what ``edgeprune analyze edsr`` and friends build.

Each entry records the paper's evaluation input size (the size of the model's *input tensor*: the low-resolution
image for EDSR, the packed 4-channel raw for SID) and the multiple the input size must respect.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from keras_models.errors import ModelConfigError
from keras_models.edsr import build_edsr
from keras_models.sid import INPUT_MULTIPLE, build_sid


@dataclass(frozen=True)
class ReferenceModel:
    name: str
    description: str
    builder: Callable
    kwargs: dict = field(default_factory=dict)
    default_input_size: tuple[int, int] = (256, 256)
    input_multiple: int = 1

    def build(self, **overrides):
        return self.builder(**{**self.kwargs, **overrides})


REFERENCE_MODELS: dict[str, ReferenceModel] = {
    m.name: m
    for m in (
        ReferenceModel("edsr", "EDSR baseline x2 (16 blocks, 64 features); input = low-res RGB in [0,1]",
                       build_edsr, {"scale": 2}, (1020, 1020)),
        ReferenceModel("edsr_x3", "EDSR baseline x3 (16 blocks, 64 features)", build_edsr, {"scale": 3},
                       (680, 680)),
        ReferenceModel("edsr_x4", "EDSR baseline x4 (16 blocks, 64 features)", build_edsr, {"scale": 4},
                       (510, 510)),
        ReferenceModel("sid", "SID Sony U-Net; input = packed Bayer raw (H/2 x W/2 x 4)", build_sid, {},
                       (1424, 2128), INPUT_MULTIPLE),
    )
}


def reference_names() -> list[str]:
    return list(REFERENCE_MODELS)


def build_reference(name: str, **overrides):
    """Builds a registered reference model with random weights (reproducible per ``seed``, default 0); keyword
    overrides go to its builder."""
    try:
        spec = REFERENCE_MODELS[name]
    except KeyError:
        raise ModelConfigError(
            f"unknown model {name!r}: use one of {', '.join(REFERENCE_MODELS)} or a path to a .keras file"
        ) from None
    return spec.build(**overrides)
