"""Stand-ins for the public checkpoints, which cannot be downloaded here: a trained edgeprune model written out in
the original frameworks' formats, so `edgeprune import` is exercised on *trained* weights exactly as a user's would be.

    python tools/checkpoint_stand_ins.py edsr BASELINE.keras OUT.pt      # EDSR-PyTorch state dict (.pt or .safetensors)
    python tools/checkpoint_stand_ins.py sid BASELINE.keras OUT/model.ckpt  # original SID TF1 checkpoint

It inverts the importer's conversions (HWIO -> OIHW, depth_to_space -> PixelShuffle channel order, [0, 1] -> [0, 255]
pixels with sub_mean/add_mean as fixed 1x1 convs; for SID, edgeprune's R, G1, G2, B packing -> the original's R, G,
B, G) and writes the file with torch / TF1's Saver under the original names. Importing the result must give back
the model it came from (the script checks that the import reproduces BASELINE within 1e-5).
"""

import sys
from pathlib import Path

import numpy as np


def edsr_state_dict(model, rgb_range: float = 255.0) -> dict[str, np.ndarray]:
    from edgeprune.checkpoints.edsr_torch import shuffle_permutation

    sd = {}

    def conv(key, layer, perm=None):
        kernel, bias = model.get_layer(layer).get_weights()
        if perm is not None:
            inverse = np.argsort(perm)
            kernel, bias = kernel[..., inverse], bias[inverse]
        sd[f"{key}.weight"] = np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))
        sd[f"{key}.bias"] = bias * np.float32(rgb_range)

    names = [layer.name for layer in model.layers]
    blocks = sum(n.endswith("_conv1") for n in names)
    conv("head.0", "head")
    for i in range(blocks):
        conv(f"body.{i}.body.0", f"block{i:02d}_conv1")
        conv(f"body.{i}.body.2", f"block{i:02d}_conv2")
    conv(f"body.{blocks}", "body_conv")
    k = 0
    while f"up{k}_conv" in names:
        factor = model.get_layer(f"up{k}_shuffle").block_size
        out = model.get_layer(f"up{k}_conv").filters // (factor * factor)
        conv(f"tail.0.{2 * k}", f"up{k}_conv")
        inverse = np.argsort(shuffle_permutation(factor, out))
        for key in (f"tail.0.{2 * k}.weight", f"tail.0.{2 * k}.bias"):
            sd[key] = np.ascontiguousarray(sd[key][inverse])
        k += 1
    conv("tail.1", "tail")
    if "sub_mean" in names:
        mean = np.array(model.get_layer("sub_mean").rgb_mean, np.float32)
        eye = np.eye(len(mean), dtype=np.float32).reshape(len(mean), len(mean), 1, 1)
        sd.update({"sub_mean.weight": eye, "sub_mean.bias": -rgb_range * mean,
                   "add_mean.weight": eye.copy(), "add_mean.bias": rgb_range * mean})
    return sd


def write_edsr(model, out: Path) -> None:
    sd = edsr_state_dict(model)
    if out.suffix == ".safetensors":
        from safetensors.numpy import save_file
        save_file(sd, str(out))
    else:
        import torch
        torch.save({k: torch.from_numpy(v) for k, v in sd.items()}, out)


def write_sid(model, prefix: Path) -> None:
    from edgeprune.checkpoints.sid_tf1 import PERM, TF1_NAMES, tf1_network
    from edgeprune.core.runtime import tf

    widths = {layer: model.get_layer(layer).filters for layer in TF1_NAMES if layer != "conv10"}
    values = {layer: model.get_layer(layer).get_weights() for layer in TF1_NAMES}  # read eagerly, outside the graph
    graph = tf.Graph()
    with graph.as_default():
        tf1_network(tf.compat.v1.placeholder(tf.float32, [None, None, None, 4]), widths)
        variables = {v.op.name: v for v in tf.compat.v1.global_variables()}
        with tf.compat.v1.Session(graph=graph) as sess:
            for layer, name in TF1_NAMES.items():
                weights = values[layer]
                if layer.startswith("up"):
                    variables[name].load(weights[0], sess)
                    continue
                kernel = weights[0][:, :, PERM, :] if layer == "conv1_1" else weights[0]
                variables[f"{name}/weights"].load(kernel, sess)
                variables[f"{name}/biases"].load(weights[1], sess)
            prefix.parent.mkdir(parents=True, exist_ok=True)
            tf.compat.v1.train.Saver(var_list=list(variables.values())).save(sess, str(prefix))


def main(kind: str, baseline: str, out: str) -> None:
    from edgeprune.checkpoints.importer import IMPORTERS
    from edgeprune.checkpoints.verify import compare
    from edgeprune.data.photos import photo_input
    from edgeprune.core.modelio import load_model

    model = load_model(baseline)
    (write_edsr if kind == "edsr" else write_sid)(model, Path(out))
    converted = IMPORTERS[kind].converter().convert(out)
    x, _ = photo_input(64, 64, int(model.input_shape[-1]))
    check = compare(converted.model(x).numpy(), model(x).numpy())
    converted.release()
    print(f"wrote {out}; importing it gives back {baseline} within {check['max_relative_difference']:.2e}")
    if check["max_relative_difference"] > 1e-5:
        sys.exit(1)


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("edsr", "sid"):
        sys.exit(__doc__)
    main(*sys.argv[1:])
