"""A TFLite conversion worker process (``python -m edgeprune.deploy.convert_worker ARCHITECTURES.json OUT_DIR
[QUANTIZE]``): converts each Keras architecture of the JSON list (weights drawn afresh; ``int8`` with uniform-noise
calibration samples and int8 input and output, as :func:`edgeprune.deploy.latency.converted_layers` does) and writes ``OUT_DIR/<index>.tflite`` for
each as it is done (renamed into place, so a file that is there is whole). Started by
:func:`edgeprune.deploy.latency.converted_layers` to convert a calibration's layers on every core; a process of its
own, so it works however the caller was started (a script, ``python -c``, stdin, a notebook).
"""

import json
import os
import sys
from pathlib import Path


def main(argv: list[str]) -> None:
    from edgeprune.core.runtime import configure_process

    configure_process()
    import keras_models
    from edgeprune.deploy.export import convert, random_samples
    from edgeprune.core.runtime import keras

    jobs, out = json.loads(Path(argv[0]).read_text()), Path(argv[1])
    quantize = argv[2] if len(argv) > 2 else "none"
    for index, architecture in jobs:
        model = keras.models.model_from_json(architecture, custom_objects=keras_models.CUSTOM_OBJECTS)
        content = convert(model, quantize, random_samples(model) if quantize == "int8" else None,
                          integer_io=quantize == "int8")
        partial = out / f".{index}.partial"
        partial.write_bytes(content)
        os.replace(partial, out / f"{index}.tflite")


if __name__ == "__main__":
    main(sys.argv[1:])
