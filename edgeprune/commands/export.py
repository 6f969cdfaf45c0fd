"""``edgeprune export``: convert a model to TFLite, verify it (:mod:`edgeprune.deploy.export`) and say what was
checked. TFLite is the only format, so the command's ``--tflite`` flag only names it."""

import json

from edgeprune.deploy.export import export_tflite


def export(model, out_path, input_size=None, quantize: str = "none", calib_data=None, as_json: bool = False) -> str:
    """Exports ``model`` to ``out_path`` (:func:`export_tflite`: nothing is written unless every check passes) and
    returns what the command prints: the verification report as JSON, or :func:`export_summary`."""
    result = export_tflite(model, out_path, input_size, quantize, calib_data)
    return json.dumps(result) if as_json else export_summary(result)


def export_summary(result: dict) -> str:
    """The verification report for people: sizes, the numeric check, the tensor census and the op counts."""
    from edgeprune.core.text import table

    n, c = result["numeric"], result["census"]
    psnr = "identical" if n["psnr_db"] is None else f"{n['psnr_db']:.1f} dB"
    return "\n".join([
        f"{result['model']} -> {result['tflite']} ({result['quantize']}, input {result['input_shape']}, "
        f"{result['size_bytes']:,} bytes)",
        f"numeric: TFLite vs Keras on {n['input']}: PSNR {psnr} (>= {n['min_psnr_db']} required), "
        f"max abs error {n['max_abs_err']:.3g}",
        f"census: {c['conv_ops']} conv ops; conv weights {c['conv_weights_tflite']:,} = cost model; "
        f"MAC {c['mac_tflite']:,} = cost model; {c['layers_checked']} layers' shapes match",
        table(["op", "count"], sorted(result["ops"].items()))])
