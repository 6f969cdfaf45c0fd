"""EDSR-PyTorch state dicts (``edsr_baseline_x2``, the full EDSR, fine-tuned or pruned variants) -> our EDSR.

What is read from the tensors: input colours and trunk width (``head.0.weight``), the block count and each block's
inner width (``body.{i}.body.0.weight``), the upsampler's stages and their factors (``tail.0.{2k}.weight``: a stage
with ``r*r*C`` outputs feeding ``C`` channels is a x``r`` pixel shuffle; so x2, x3, x4 = two x2 stages, x8), hence
the scale. What cannot be: ``res_scale`` (a constant in ``forward``), given with ``--res-scale`` or assumed 0.1 for
the full EDSR's shape (256 features, 32 blocks) and 1 otherwise, as EDSR-PyTorch's own configurations are; and the
value range, read from the ``sub_mean`` bias when it is the DIV2K mean times 255 or times 1, else given with
``--rgb-range``.

The conversion, exact in real arithmetic:
- kernels OIHW -> HWIO;
- the upsampler convs' output channels permuted: ``nn.PixelShuffle(r)`` takes channel ``c*r*r + i*r + j`` to output
  channel ``c`` at (i, j), TensorFlow's ``depth_to_space`` takes ``(i*r + j)*C + c`` there;
- the value range: EDSR-PyTorch computes on [0, rgb_range] pixels, our models on [0, 1]. Every activation of the
  network scales with its input (convs are linear, ReLU and the residual adds are positively homogeneous) once the
  biases scale too, so biases are divided by rgb_range and kernels are kept; the output is the original's divided by
  rgb_range.
"""

from pathlib import Path

import numpy as np

from edgeprune.checkpoints.converted import Converted
from edgeprune.checkpoints.state_dict import check_source, load_state_dict, torch_or_explain
from edgeprune.core.errors import CheckpointError, InvalidArgumentError
from keras_models.edsr import DIV2K_RGB_MEAN

FULL_EDSR = {"num_features": 256, "num_blocks": 32, "res_scale": 0.1}
VERIFY_SIZE = (32, 32)
FOREIGN_HINTS = {"conv_first.weight": "a BasicSR EDSR (keys conv_first/conv_after_body/upsample/conv_last), "
                                      "not EDSR-PyTorch's layout"}


def source_files(path) -> list[Path]:
    return [check_source(path)]


def _shape(sd, key, path):
    if key not in sd:
        raise CheckpointError(f"'{path}' lacks '{key}': it is not a complete EDSR-PyTorch state dict")
    return tuple(sd[key].shape)


def _stages(sd: dict, path) -> list[tuple[int, int]]:
    """(factor, width after the shuffle) per upsampler stage, from the tensors."""
    convs = []
    k = 0
    while f"tail.0.{k}.weight" in sd:
        convs.append(_shape(sd, f"tail.0.{k}.weight", path))
        k += 2
    if not convs:
        raise CheckpointError(f"'{path}' has no upsampler ('tail.0.0.weight'): it is not an EDSR-PyTorch state dict")
    feeds = [c[1] for c in convs[1:]] + [_shape(sd, "tail.1.weight", path)[1]]
    stages = []
    for k, (conv, width) in enumerate(zip(convs, feeds)):
        ratio = conv[0] / width if width else 0
        factor = {4: 2, 9: 3}.get(ratio)
        if factor is None or conv[0] != factor * factor * width:
            raise CheckpointError(f"'{path}': upsampler conv 'tail.0.{2 * k}.weight' has {conv[0]} outputs for "
                                  f"{width} channels after its pixel shuffle, which is neither x2 (4x) nor x3 (9x)")
        stages.append((factor, width))
    if len(stages) > 1 and any(f != 2 for f, _ in stages):
        raise CheckpointError(f"'{path}': a x3 upsampler stage among several stages is not an EDSR upsampler")
    return stages


def _value_range(sd: dict, n_colors: int, rgb_range: float | None, path) -> tuple[float, list[float] | None, str]:
    """(rgb_range, rgb_mean or None, how the range was found)."""
    if "sub_mean.bias" not in sd:
        if "add_mean.bias" in sd:
            raise CheckpointError(f"'{path}' has 'add_mean' but no 'sub_mean': it is not an EDSR-PyTorch state dict")
        return (255.0 if rgb_range is None else rgb_range), None, (
            "given" if rgb_range is not None else "assumed 255 (EDSR-PyTorch's default; no mean shift to read it from)")
    for name in ("sub_mean", "add_mean"):
        weight = sd.get(f"{name}.weight")
        if weight is None or f"{name}.bias" not in sd:
            raise CheckpointError(f"'{path}' lacks '{name}.weight' or '{name}.bias'")
        if weight.shape != (n_colors, n_colors, 1, 1) or not np.allclose(weight[:, :, 0, 0], np.eye(n_colors),
                                                                         atol=1e-6):
            raise CheckpointError(f"'{path}': '{name}.weight' is not the identity (MeanShift with rgb_std != 1), "
                                  f"which edgeprune's MeanShift does not support")
    sub, add = sd["sub_mean.bias"].astype(np.float64), sd["add_mean.bias"].astype(np.float64)
    if sub.shape != (n_colors,) or not np.allclose(-sub, add, rtol=1e-6, atol=1e-6):
        raise CheckpointError(f"'{path}': 'sub_mean.bias' and 'add_mean.bias' are not opposite "
                              f"({sub.tolist()} vs {add.tolist()}), unlike EDSR-PyTorch's MeanShift")
    how = "given"
    if rgb_range is None:
        if n_colors == 3:
            ratios = -sub / np.array(DIV2K_RGB_MEAN)
            for candidate in (255.0, 1.0):
                if np.allclose(ratios, candidate, rtol=1e-5):
                    rgb_range, how = candidate, "read from sub_mean.bias (DIV2K mean x rgb_range)"
        if rgb_range is None:
            raise CheckpointError(f"'{path}': cannot tell the value range from 'sub_mean.bias' {sub.tolist()} "
                                  f"(not the DIV2K mean times 255 or 1): give --rgb-range")
    mean = (-sub / rgb_range).tolist()
    if not all(0.0 <= m <= 1.0 for m in mean):
        raise CheckpointError(f"'{path}': with rgb_range {rgb_range:g} the mean would be {mean}, outside [0, 1]: "
                              f"give the --rgb-range the model was trained with")
    return rgb_range, mean, how


def infer_config(sd: dict, path, scale: int | None = None, res_scale: float | None = None,
                 rgb_range: float | None = None) -> dict:
    """The EDSR configuration a state dict holds (see the module docstring), checked against every tensor."""
    if "head.0.weight" not in sd:
        hint = next((h for k, h in FOREIGN_HINTS.items() if k in sd), None)
        keys = ", ".join(sorted(sd)[:4])
        raise CheckpointError(f"'{path}' is not an EDSR-PyTorch state dict (no 'head.0.weight'"
                              f"{'; it looks like ' + hint if hint else ''}; its keys begin {keys})")
    head = _shape(sd, "head.0.weight", path)
    if len(head) != 4 or head[2:] != (3, 3):
        raise CheckpointError(f"'{path}': 'head.0.weight' has shape {list(head)}, not a 3x3 conv [out, in, 3, 3]")
    num_features, n_colors = head[0], head[1]
    blocks = []
    while f"body.{len(blocks)}.body.0.weight" in sd:
        blocks.append(_shape(sd, f"body.{len(blocks)}.body.0.weight", path)[0])
    stages = _stages(sd, path)
    found = int(np.prod([f for f, _ in stages]))
    if scale is not None and scale != found:
        raise CheckpointError(f"'{path}' is an x{found} EDSR (its upsampler has {len(stages)} stage(s) of "
                              f"x{', x'.join(str(f) for f, _ in stages)}), not x{scale} as given")
    full = num_features == FULL_EDSR["num_features"] and len(blocks) == FULL_EDSR["num_blocks"]
    if res_scale is None:
        res_scale, res_how = (FULL_EDSR["res_scale"], "assumed: the full EDSR's (256 features, 32 blocks)") if full \
            else (1.0, "assumed: EDSR-baseline's (res_scale is not stored in a state dict)")
    else:
        res_how = "given"
    rgb_range, rgb_mean, range_how = _value_range(sd, n_colors, rgb_range, path)
    config = {"scale": found, "n_colors": n_colors, "num_features": num_features, "num_blocks": len(blocks),
              "block_features": blocks, "upsample": [list(s) for s in stages], "res_scale": res_scale,
              "res_scale_source": res_how, "rgb_range": rgb_range, "rgb_range_source": range_how,
              "rgb_mean": rgb_mean}
    _check_keys(sd, config, path)
    return config


def expected_shapes(config: dict) -> dict[str, tuple]:
    """Every key and shape of the state dict of ``config``'s network, as EDSR-PyTorch names them."""
    f, c = config["num_features"], config["n_colors"]
    shapes = {}

    def conv(key, out, inp, k=3):
        shapes[f"{key}.weight"], shapes[f"{key}.bias"] = (out, inp, k, k), (out,)

    if config["rgb_mean"] is not None:
        conv("sub_mean", c, c, 1)
        conv("add_mean", c, c, 1)
    conv("head.0", f, c)
    for i, inner in enumerate(config["block_features"]):
        conv(f"body.{i}.body.0", inner, f)
        conv(f"body.{i}.body.2", f, inner)
    conv(f"body.{config['num_blocks']}", f, f)
    width = f
    for k, (factor, out) in enumerate(config["upsample"]):
        conv(f"tail.0.{2 * k}", factor * factor * out, width)
        width = out
    conv("tail.1", c, width)
    return shapes


def _check_keys(sd: dict, config: dict, path) -> None:
    expected = expected_shapes(config)
    missing = [k for k in expected if k not in sd]
    if missing:
        raise CheckpointError(f"'{path}' lacks {len(missing)} tensor(s) of the EDSR it describes "
                              f"({config['num_blocks']} blocks, x{config['scale']}): {', '.join(missing[:4])}")
    extra = sorted(k for k in sd if k not in expected)
    if extra:
        raise CheckpointError(f"'{path}' has {len(extra)} tensor(s) an EDSR-PyTorch network does not: "
                              f"{', '.join(extra[:4])} (another architecture, or a variant edgeprune cannot import)")
    for key, shape in expected.items():
        if tuple(sd[key].shape) != shape:
            raise CheckpointError(f"'{path}': '{key}' has shape {list(sd[key].shape)}, expected {list(shape)} for "
                                  f"the EDSR its other tensors describe")


def shuffle_permutation(factor: int, channels: int) -> np.ndarray:
    """``perm[k]`` = the PyTorch conv output channel that feeds TensorFlow depth-to-space input channel ``k``."""
    return np.array([c * factor * factor + s for s in range(factor * factor) for c in range(channels)])


def keras_weights(sd: dict, config: dict) -> dict[str, list[np.ndarray]]:
    """Our EDSR's layer weights ({layer name: [kernel HWIO, bias]}) from an EDSR-PyTorch state dict."""
    scale = 1.0 / config["rgb_range"]

    def conv(key, perm=None):
        kernel, bias = sd[f"{key}.weight"].transpose(2, 3, 1, 0), sd[f"{key}.bias"] * np.float32(scale)
        if perm is not None:
            kernel, bias = kernel[..., perm], bias[perm]
        return [np.ascontiguousarray(kernel, np.float32), np.asarray(bias, np.float32)]

    weights = {"head": conv("head.0")}
    for i in range(config["num_blocks"]):
        weights[f"block{i:02d}_conv1"] = conv(f"body.{i}.body.0")
        weights[f"block{i:02d}_conv2"] = conv(f"body.{i}.body.2")
    weights["body_conv"] = conv(f"body.{config['num_blocks']}")
    for k, (factor, out) in enumerate(config["upsample"]):
        weights[f"up{k}_conv"] = conv(f"tail.0.{2 * k}", shuffle_permutation(factor, out))
    weights["tail"] = conv("tail.1")
    return weights


def build_keras(config: dict, sd: dict):
    from keras_models import build_edsr

    model = build_edsr(scale=config["scale"], num_blocks=config["num_blocks"], num_features=config["num_features"],
                       block_features=config["block_features"],
                       upsample_features=[out for _, out in config["upsample"]], in_channels=config["n_colors"],
                       res_scale=config["res_scale"], rgb_range=1.0, rgb_mean=config["rgb_mean"],
                       input_size=(None, None), name="edsr")
    for name, values in keras_weights(sd, config).items():
        model.get_layer(name).set_weights(values)
    return model


def convert(path, scale: int | None = None, res_scale: float | None = None,
            rgb_range: float | None = None, reference: str | None = None) -> Converted:
    """Reads an EDSR-PyTorch state dict and returns our EDSR with its weights and the original network to check it
    against (:func:`reference_network`: PyTorch when installed)."""
    for name, value in (("scale", scale), ("res_scale", res_scale), ("rgb_range", rgb_range)):
        if value is not None and (isinstance(value, bool) or not value > 0):
            raise InvalidArgumentError(f"--{name.replace('_', '-')} must be positive, got {value!r}")
    if scale is not None and scale not in (2, 3, 4, 8):
        raise InvalidArgumentError(f"--scale must be 2, 3, 4 or 8, got {scale}")
    path = check_source(path)
    sd = load_state_dict(path)
    config = infer_config(sd, path, scale, res_scale, rgb_range)
    model = build_keras(config, sd)
    run_reference, framework = reference_network(config, sd, reference)
    r = config["rgb_range"]
    conversions = ["kernels OIHW -> HWIO",
                   "upsampler conv output channels permuted from nn.PixelShuffle's order to depth_to_space's",
                   f"pixel range [0, {r:g}] -> [0, 1]: biases divided by {r:g} (kernels unchanged)"]
    if config["rgb_mean"] is not None:
        conversions.append("sub_mean/add_mean (fixed 1x1 convs) -> MeanShift layers with mean "
                           f"{[round(m, 6) for m in config['rgb_mean']]}")
    return Converted(model=model, architecture="edsr", config=config, conversions=conversions,
                     reference=run_reference,
                     framework=framework, verify_size=VERIFY_SIZE)


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def reference_network(config: dict, sd: dict, framework: str | None = None):
    """(reference(x), its name): the original network on our layout and range. ``framework`` "torch" (the default
    when torch is installed) loads the tensors into the EDSR-PyTorch network with ``strict=True``; "numpy" runs
    :mod:`numpy_reference`'s transcription of its forward pass."""
    framework = framework or ("torch" if torch_available() else "numpy")
    r = float(config["rgb_range"])
    if framework == "numpy":
        from edgeprune.checkpoints.numpy_reference import edsr_forward

        def reference(x: np.ndarray) -> np.ndarray:
            return edsr_forward(sd, config, x.transpose(0, 3, 1, 2) * np.float32(r)).transpose(0, 2, 3, 1) / r

        return reference, ("numpy transcription of EDSR-PyTorch's forward pass (PyTorch is not installed; "
                           "install edgeprune[torch] to check in PyTorch itself)")
    torch = torch_or_explain("checking an EDSR import against EDSR-PyTorch")
    from edgeprune.checkpoints.torch_reference import build_torch_edsr

    net = build_torch_edsr(config["num_features"], config["block_features"],
                           [tuple(s) for s in config["upsample"]], config["n_colors"], config["res_scale"],
                           config["rgb_range"], config["rgb_mean"])
    net.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sd.items()}, strict=True)

    def reference(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            y = net(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))) * r)
        return y.numpy().transpose(0, 2, 3, 1) / r

    return reference, f"PyTorch {torch.__version__} (the EDSR-PyTorch network, state dict loaded strictly)"
