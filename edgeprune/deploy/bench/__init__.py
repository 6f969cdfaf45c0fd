"""Benchmarking exported TFLite models: on the host through LiteRT, on a device through adb and benchmark_model.

Both fill the same result schema (:mod:`edgeprune.deploy.bench.result`), so host and device figures compare directly.
"""
