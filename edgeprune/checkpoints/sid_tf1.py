"""The original "Learning to See in the Dark" TF1 checkpoint (cchen156/Learning-to-See-in-the-Dark, ``train_Sony.py``)
imported into edgeprune's tf_keras SID model (:func:`keras_models.build_sid`).

Format: a TF1 ``tf.train.Saver`` checkpoint, ``PREFIX.index`` + ``PREFIX.data-*`` (e.g. ``checkpoint/Sony/model.ckpt``;
the ``.meta`` graph is not needed). Its network variables are ``g_conv{1..9}_{1,2}/weights`` (HWIO) and ``/biases``
(tf.contrib.slim convs), ``g_conv10/weights|biases`` (1x1 to 12 = 3 colours x 2x2) and the four unnamed transposed-conv
filters ``Variable``, ``Variable_1``, ``Variable_2``, ``Variable_3`` (up6..up9, ``[2, 2, out, in]``, no bias). Adam's
``/Adam``, ``/Adam_1`` slots, ``beta1_power``, ``beta2_power`` and ``global_step`` are ignored. Every layer's width is
inferred from the tensors, so fine-tuned or pruned variants import too; the Fuji (X-Trans, 9-channel) model is refused.

Conversions: kernels are copied as they are (TF's HWIO conv and ``[h, w, out, in]`` transposed-conv layouts are
tf_keras'), except conv1_1's input channels: the original packs a Sony RGGB mosaic by position as R, G(0,1), B(1,1),
G(1,0), edgeprune (:func:`edgeprune.data.raw.pack`) as R, G1, G2, B, so ``ours[:, :, i, :] = orig[:, :, PERM[i], :]``.

``reference`` runs the original network, rebuilt by :func:`tf1_network` with ``tf.compat.v1`` in a private graph under
the original variable names and restored from the checkpoint file by ``tf.compat.v1.train.Saver``.
"""

import glob
import os
import re
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from edgeprune.checkpoints.converted import Converted
from edgeprune.core.errors import CheckpointError, InvalidArgumentError
from edgeprune.core.runtime import tf

PERM = [0, 1, 3, 2]  # ours (R, G1, G2, B) from the original's (R, G(0,1), B(1,1), G(1,0)); its own inverse
CONVS = [f"conv{l}_{k}" for l in range(1, 10) for k in (1, 2)]
UPS = [f"up{l}" for l in range(6, 10)]
TF1_NAMES = {**{c: f"g_{c}" for c in CONVS + ["conv10"]}, **{u: "Variable" + (f"_{i}" if i else "")
                                                           for i, u in enumerate(UPS)}}
NETWORK_VARIABLES = [f"g_{c}/{p}" for c in CONVS + ["conv10"] for p in ("weights", "biases")] + \
    [TF1_NAMES[u] for u in UPS]
IGNORED_NAMES = ("beta1_power", "beta2_power", "global_step")
_SUFFIX = re.compile(r"\.(index|meta|data-\d+-of-\d+)$")
_HINT = "give the checkpoint prefix (the path before .index, e.g. checkpoint/Sony/model.ckpt) or its directory"


def _prefix(prefix) -> Path:
    """The checkpoint prefix named by ``prefix``: the prefix itself, one of its files, or its directory (named by the
    directory's ``checkpoint`` file, else the directory's only ``*.index``)."""
    if not isinstance(prefix, (str, os.PathLike)) or not str(prefix):
        raise InvalidArgumentError(f"a TF1 checkpoint must be given as a path, got {prefix!r}")
    path = Path(prefix)
    if path.is_dir():
        try:
            latest = tf.train.latest_checkpoint(str(path)) if (path / "checkpoint").is_file() else None
        except (tf.errors.OpError, ValueError) as exc:
            raise CheckpointError(f"'{path}/checkpoint' is unreadable ({_reason(exc)}): {_HINT}") from exc
        found = sorted(p.name[:-len(".index")] for p in path.glob("*.index"))
        if latest is None and len(found) != 1:
            what = f"several TF1 checkpoints {found[:4]} and no 'checkpoint' file naming one" if found else \
                "no TF1 checkpoint (no *.index file)"
            raise CheckpointError(f"the directory '{path}' holds {what}: {_HINT}")
        path = Path(latest) if latest else path / found[0]
    elif not Path(f"{path}.index").is_file() and _SUFFIX.search(path.name):
        path = path.with_name(_SUFFIX.sub("", path.name))
    if not Path(f"{path}.index").is_file():
        raise CheckpointError(f"no TF1 checkpoint at '{prefix}' ('{path}.index' does not exist): {_HINT}")
    return path


def source_files(prefix) -> list[Path]:
    """The files of the checkpoint: ``PREFIX.index`` and its ``PREFIX.data-*`` shards."""
    path = _prefix(prefix)
    data = sorted(path.parent.glob(f"{glob.escape(path.name)}.data-*"))
    if not data:
        raise CheckpointError(f"the TF1 checkpoint '{path}' has an index but no data file ('{path}.data-*')")
    return [Path(f"{path}.index"), *data]


def _reason(exc: Exception) -> str:
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return f"{type(exc).__name__}: {text[:200]}"


@contextmanager
def _reading(path: Path):
    """TF's checkpoint reader for ``path``; any failure inside the block (a corrupt index, a short data file) is a
    one-line CheckpointError."""
    try:
        yield tf.train.load_checkpoint(str(path))
    except (tf.errors.OpError, ValueError, OSError, IndexError) as exc:  # IndexError: a short read
        raise CheckpointError(f"'{path}' is not a readable TF1 checkpoint ({_reason(exc)})") from exc


def read_checkpoint(prefix, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """The checkpoint's tensors by variable name (only ``names`` when given), as TF's checkpoint reader returns them."""
    path = _prefix(prefix)
    with _reading(path) as reader:
        names = sorted(reader.get_variable_to_shape_map()) if names is None else names
        return {name: np.asarray(reader.get_tensor(name)) for name in names}


def _shapes(path: Path) -> dict[str, list[int]]:
    with _reading(path) as reader:
        return {k: list(v) for k, v in reader.get_variable_to_shape_map().items()}


def level_widths(features: Sequence[int]) -> dict[str, int]:
    """Every layer's width (our names) in a SID with the five level widths ``features``, as :func:`build_sid` has it."""
    widths = {c: features[min(int(c[4]), 10 - int(c[4])) - 1] for c in CONVS}  # conv{l}_k: level l, or 10 - l
    return {**widths, **{u: features[9 - int(u[2])] for u in UPS}}


def _is_ignored(name: str) -> bool:
    return name.endswith(("/Adam", "/Adam_1")) or name in IGNORED_NAMES


def infer_widths(shapes: Mapping[str, Sequence[int]], in_channels: int = 4) -> dict[str, int]:
    """Every layer's output width (our layer names), checking each shape against the network's wiring."""
    first, last = list(shapes["g_conv1_1/weights"]), list(shapes["g_conv10/weights"])
    if (len(first) == 4 and first[2] == 9) or (len(last) == 4 and last[3] == 27):
        raise CheckpointError("this is the Fuji (X-Trans, 9-channel) SID model; edgeprune's raw pipeline packs Bayer "
                              "(4-channel) raw only, so it is not supported")
    widths, skips, cin = {}, {}, in_channels

    def take(layer, size, cin, out=None):
        conv = layer.startswith("conv")
        name = TF1_NAMES[layer] + ("/weights" if conv else "")
        shape = list(shapes[name])
        width = out or (shape[3 if conv else 2] if len(shape) == 4 else "width")
        expected = [size, size, cin, width] if conv else [size, size, width, cin]
        if shape != expected or not (isinstance(width, int) and width >= 1):
            what = f"{in_channels} packed Bayer input channels" if layer == "conv1_1" else "the layers before"
            raise CheckpointError(f"'{name}' has shape {shape}, expected [{', '.join(map(str, expected))}] "
                                  f"({layer} of the SID network, fed by {what})")
        bias = list(shapes[f"{TF1_NAMES[layer]}/biases"]) if conv else [width]
        if bias != [width]:
            raise CheckpointError(f"'{TF1_NAMES[layer]}/biases' has shape {bias}, expected [{width}] (one per "
                                  f"output of '{name}')")
        widths[layer] = width
        return width

    for level in range(1, 10):
        if level > 5:
            cin = take(f"up{level}", 2, cin) + skips[10 - level]
        cin = take(f"conv{level}_2", 3, take(f"conv{level}_1", 3, cin))
        skips[level] = cin
    take("conv10", 1, cin, out=12)
    return widths


def tf1_network(input, widths, upscale: int = 2):
    """The original ``network(input)`` in ``tf.compat.v1`` (call it inside a graph), with its variable names and ops.

    ``widths`` is five level widths or a mapping of our layer names (conv1_1..conv9_2, up6..up9) to widths; conv10
    has ``3 * upscale**2`` outputs. The transposed convs' output shape is the skip's with their own width (the
    original passes ``tf.shape(skip)``, the same when the two widths agree)."""
    v1 = tf.compat.v1
    widths = widths if isinstance(widths, Mapping) else level_widths(widths)

    def conv(x, scope, out, size=3, act=True):
        with v1.variable_scope(scope):
            w = v1.get_variable("weights", [size, size, int(x.shape[-1]), out],
                                initializer=v1.glorot_uniform_initializer())
            b = v1.get_variable("biases", [out], initializer=v1.zeros_initializer())
        y = tf.nn.bias_add(tf.nn.conv2d(x, w, 1, "SAME"), b)
        return tf.maximum(y * 0.2, y) if act else y

    def up_concat(x, skip, out, name):
        f = v1.Variable(tf.random.truncated_normal([2, 2, out, int(x.shape[-1])], stddev=0.02), name=name)
        shape = tf.concat([tf.shape(skip)[:3], [out]], 0)
        return tf.concat([tf.nn.conv2d_transpose(x, f, shape, strides=[1, 2, 2, 1]), skip], 3)

    x, skips = input, {}
    for level in range(1, 10):
        if level > 5:
            x = up_concat(x, skips[10 - level], widths[f"up{level}"], TF1_NAMES[f"up{level}"])
        for k in (1, 2):
            x = conv(x, f"g_conv{level}_{k}", widths[f"conv{level}_{k}"])
        if level < 5:
            skips[level] = x
            x = tf.nn.max_pool2d(x, 2, 2, "SAME")
    return tf.nn.depth_to_space(conv(x, "g_conv10", 3 * upscale * upscale, size=1, act=False), upscale)


def convert(prefix) -> Converted:
    """The checkpoint as edgeprune's SID model, with the original network (restored by TF1's Saver) as reference."""
    from keras_models import build_sid

    path = _prefix(prefix)
    source_files(path)
    shapes = _shapes(path)
    names = set(shapes)
    if not any(n.startswith("g_conv") for n in names):
        raise CheckpointError(f"'{path}' is not a SID checkpoint (no g_conv* variables; it holds e.g. "
                              f"{sorted(names)[:5]})")
    unexpected = sorted(n for n in names - set(NETWORK_VARIABLES) if not _is_ignored(n))
    if unexpected:
        raise CheckpointError(f"'{path}' has variables the SID network does not: {unexpected[:5]}"
                              + (f" and {len(unexpected) - 5} more" if len(unexpected) > 5 else ""))
    missing = [n for n in NETWORK_VARIABLES if n not in names]
    if missing:
        raise CheckpointError(f"'{path}' lacks SID network variable(s) {missing[:5]}"
                              + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))
    widths = infer_widths(shapes)
    tensors = read_checkpoint(path, NETWORK_VARIABLES)
    for name, value in tensors.items():
        if not np.issubdtype(value.dtype, np.floating):
            raise CheckpointError(f"'{name}' in '{path}' holds {value.dtype} values, expected floating point")

    features = [widths[f"conv{l}_2"] for l in range(1, 6)]
    overrides = {n: widths[n] for n, w in level_widths(features).items() if widths[n] != w}
    model = build_sid(features=features, conv_widths=overrides, in_channels=4, out_channels=3, upscale=2,
                      input_size=(None, None))
    for layer, tf1 in TF1_NAMES.items():
        if layer.startswith("up"):
            model.get_layer(layer).set_weights([tensors[tf1].astype(np.float32)])
        else:
            kernel = tensors[f"{tf1}/weights"].astype(np.float32)
            kernel = kernel[:, :, PERM, :] if layer == "conv1_1" else kernel
            model.get_layer(layer).set_weights([kernel, tensors[f"{tf1}/biases"].astype(np.float32)])

    graph = tf.Graph()
    with graph.as_default():
        x_in = tf.compat.v1.placeholder(tf.float32, [None, None, None, 4], name="input")
        out = tf1_network(x_in, widths)
        saver = tf.compat.v1.train.Saver(var_list=tf.compat.v1.global_variables())
        sess = tf.compat.v1.Session(graph=graph)
        try:  # inside the graph's context: outside it, Saver takes its eager path
            saver.restore(sess, str(path))
        except (tf.errors.OpError, ValueError) as exc:
            sess.close()
            raise CheckpointError(f"TF1's Saver cannot restore '{path}' ({_reason(exc)})") from exc

    def reference(x: np.ndarray) -> np.ndarray:
        return sess.run(out, {x_in: np.asarray(x, np.float32)[..., PERM]})

    slots = sum(n.endswith(("/Adam", "/Adam_1")) for n in names)
    config = {"features": features, "conv_widths": overrides, "in_channels": 4, "out_channels": 3, "upscale": 2,
              "variables": len(NETWORK_VARIABLES),
              "parameters": int(sum(v.size for v in tensors.values()))}
    conversions = [
        "conv1_1's kernel input channels reordered from the original packing R, G(0,1), B(1,1), G(1,0) to edgeprune's "
        "R, G1, G2, B: ours[:, :, i, :] = original[:, :, [0, 1, 3, 2][i], :]",
        "g_convL_K/weights (HWIO) and /biases copied as they are to convL_K (and g_conv10 to conv10)",
        "transposed-conv filters Variable, Variable_1, Variable_2, Variable_3 copied as they are to up6..up9 "
        "([2, 2, out, in], no bias)",
    ]
    ignored = ([f"{slots} optimizer slots (/Adam, /Adam_1)"] if slots else []) + sorted(names & set(IGNORED_NAMES))
    return Converted(model=model, architecture="sid", config=config, conversions=conversions, reference=reference,
                     framework=f"TensorFlow {tf.__version__} (tf.compat.v1 graph with the original variable names, "
                               "restored by tf.compat.v1.train.Saver)",
                     verify_size=(64, 64), ignored=ignored, release=sess.close)
