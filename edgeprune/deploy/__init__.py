"""Deployment: TFLite export and verification (``export``), reading .tflite files (``tflite_reader``), the latency
model (``latency``) and benchmarks on the host and on Android devices (``bench``). Builds on ``graph`` and ``data``."""
