"""The benchmark result schema shared by the host runner and the device runner (benchmark_model semantics).

Times are microseconds. ``first_us`` is the first inference; ``warmup_avg_us`` the mean of the warm-up runs (the
first included, as benchmark_model counts it); the inference statistics come from the timed runs only.
``mem_overall_mb`` is the resident-memory growth from before the model was loaded to the peak, as benchmark_model's
"Memory footprint delta ... overall"; ``mem_peak_rss_mb`` the process's peak resident set.
"""

import statistics
from dataclasses import asdict, dataclass, field

import numpy as np

SCHEMA = "edgeprune.bench/1"


@dataclass
class BenchResult:
    target: str  # "host" or "device"
    runner: str
    model: str
    model_size_bytes: int | None
    num_threads: int | None
    delegate: str | None
    runs: int
    init_us: float | None
    first_us: float | None
    warmup_avg_us: float | None
    avg_us: float
    std_us: float | None
    min_us: float | None
    max_us: float | None
    median_us: float | None
    p5_us: float | None = None
    p95_us: float | None = None
    mem_overall_mb: float | None = None
    mem_peak_rss_mb: float | None = None
    delegated_nodes: int | None = None
    total_nodes: int | None = None
    delegate_partitions: int | None = None
    input_shapes: list = field(default_factory=list)
    device: dict = field(default_factory=dict)
    delegates: list = field(default_factory=list)
    op_profile: dict | None = None
    warnings: list = field(default_factory=list)
    memory_traffic: dict | None = None
    timings_us: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"schema": SCHEMA, **asdict(self)}


def timing_stats(timings_us) -> dict:
    """avg/std/min/max/median/p5/p95 of a list of run times (population std, as benchmark_model prints)."""
    t = np.asarray(timings_us, dtype=np.float64)
    if t.size == 0:
        raise ValueError("no timed runs")
    return {"runs": int(t.size), "avg_us": float(t.mean()), "std_us": float(t.std()), "min_us": float(t.min()),
            "max_us": float(t.max()), "median_us": float(statistics.median(t.tolist())),
            "p5_us": float(np.percentile(t, 5)), "p95_us": float(np.percentile(t, 95))}
