"""Child process of the host benchmark: loads only LiteRT (no TensorFlow), so memory figures are the model's.

Usage: python -m edgeprune.deploy.bench.host_worker MODEL THREADS WARMUP RUNS MAX_SECS [H W]  -> one JSON object on
stdout. With H W the input's spatial size is resized to HxW before the tensors are allocated.

LiteRT's public Python API does not say what its default XNNPACK delegate took, so :func:`delegate_partitions` is
this package's one use of a private LiteRT interpreter method (``tests/test_bench_host.py`` fails loudly if a LiteRT
upgrade moves it); the node count comes from the flatbuffer, read by the parent (:mod:`edgeprune.deploy.bench.host`).
"""

import json
import sys
import time


def _status_kb(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def delegate_partitions(interpreter) -> int:
    """Partitions of the graph that a delegate took (each one becomes a DELEGATE node in the execution plan)."""
    return sum(op["op_name"] == "DELEGATE" for op in interpreter._get_ops_details())


def resize_input(interpreter, size) -> None:
    """Resizes the spatial dimensions (1 and 2 of NHWC) of every 4-D input to ``size`` (H, W)."""
    for detail in interpreter.get_input_details():
        shape = [int(d) for d in detail["shape"]]
        if len(shape) == 4:
            interpreter.resize_tensor_input(detail["index"], [shape[0], *size, shape[3]], strict=False)


def main(argv) -> None:
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    path, threads, warmup, runs, max_secs = argv[0], int(argv[1]), int(argv[2]), int(argv[3]), float(argv[4])
    rss_before = _status_kb("VmRSS")
    start = time.perf_counter()
    interpreter = Interpreter(model_path=path, num_threads=threads)
    if len(argv) >= 7:
        resize_input(interpreter, (int(argv[5]), int(argv[6])))
    interpreter.allocate_tensors()
    init_us = (time.perf_counter() - start) * 1e6
    rng = np.random.default_rng(0)
    shapes = []
    for detail in interpreter.get_input_details():
        shape, dtype = detail["shape"], detail["dtype"]
        shapes.append([int(d) for d in shape])
        if np.issubdtype(dtype, np.floating):
            data = rng.random(shape, dtype=np.float32).astype(dtype)
        else:
            info = np.iinfo(dtype)
            data = rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
        interpreter.set_tensor(detail["index"], data)

    def once() -> float:
        t0 = time.perf_counter()
        interpreter.invoke()
        return (time.perf_counter() - t0) * 1e6

    warm = [once() for _ in range(max(warmup, 1))]
    timings, budget_start = [], time.perf_counter()
    for _ in range(runs):
        timings.append(once())
        if max_secs > 0 and time.perf_counter() - budget_start > max_secs:
            break
    json.dump({"init_us": init_us, "first_us": warm[0], "warmup_avg_us": sum(warm) / len(warm),
               "timings_us": timings, "rss_before_kb": rss_before, "hwm_kb": _status_kb("VmHWM"),
               "delegate_partitions": delegate_partitions(interpreter), "input_shapes": shapes}, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
