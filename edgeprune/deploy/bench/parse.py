"""Parse benchmark_model's output (every version in tests/data/benchmark_model/SOURCES.md) into the shared result
schema.

Lines understood (numbers may be in scientific notation):
- ``count=50 first=171000 curr=169000 min=168000 max=175000 avg=170000 std=1500`` (builds from TF Lite 2.19/2.20
  on add ``p5=``, ``median=`` and ``p95=``); the last such line before the summary is the timed runs (spread and
  percentiles), an earlier one the warm-up; the average is the summary line's;
- ``Inference timings in us: Init: X, First inference: Y, Warmup (avg): Z, Inference (avg): W`` (newer summary) or
  ``Average inference timings in us: Warmup: Z, Init: X, Inference: W`` (older summary);
- ``Initialized session in 25.1ms.``; ``Num threads: [4]``; ``Graph: [path]``;
- ``Memory footprint delta from the start of the tool (MB): init=A overall=B``, ``Peak memory footprint (MB): ...``
  and ``Overall peak memory footprint (MB) via periodic monitoring: C``;
- ``Replacing N out of M node(s) with delegate (NAME) node, yielding K partitions`` (one line per delegate);
- op-profiling tables (``Run Order``, ``Summary by node type``; with or without the ``[start]`` column); in old
  builds the only run statistics are the profiler's ``Timings (microseconds): count=...`` line.

Lines may carry a log prefix (``INFO: ``, ``VERBOSE: ``, or Android logcat's ``05-30 15:16:44.857 3380 3380 I
tflite  : ``), which is stripped first. The fixtures in ``tests/data/benchmark_model`` are outputs captured from
real runs of several versions (their sources are listed there).

A run is complete only when its summary line is there in full (ended by a newline) and no failure marker is: a
failed or truncated run raises :class:`BenchmarkParseError` with the error lines, never a partial result.
"""

import re

from edgeprune.deploy.bench.result import BenchResult
from edgeprune.core.errors import EdgepruneError

NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_LOG_PREFIX = re.compile(r"^(?:\d\d-\d\d\s+\d\d:\d\d:\d\d\.\d+\s+\d+\s+\d+\s+[VDIWEFS]\s+[^:]*:\s?)?"
                         r"(?:(?:INFO|VERBOSE|WARNING|DEBUG):\s*)?")
_COUNT = re.compile(rf"^\s*count=(?P<count>\d+)(?P<rest>(?:\s+\w+={NUM})*)\s*$")
_PROFILER_COUNT = re.compile(rf"^\s*Timings \(microseconds\):\s*count=(?P<count>\d+)(?P<rest>(?:\s+\w+={NUM})*)\s*$")
_PARTIAL = re.compile(r"graph will be partially executed by the delegate w/ (?P<k>\d+) delegate kernels")
_NOT_EXECUTED = re.compile(r"Though (?P<name>\w+) delegate is explicitly applied, the model graph will not be "
                           r"executed by the delegate")
_FIELD = re.compile(rf"(\w+)=({NUM})")
_NEW_SUMMARY = re.compile(rf"Inference timings in us:\s*Init:\s*(?P<init>{NUM}),\s*First inference:\s*(?P<first>{NUM}),"
                          rf"\s*Warmup \(avg\):\s*(?P<warmup>{NUM}),\s*Inference \(avg\):\s*(?P<avg>{NUM})\s*$")
_OLD_SUMMARY = re.compile(rf"Average inference timings in us:\s*Warmup:\s*(?P<warmup>{NUM}),\s*Init:\s*(?P<init>{NUM}),"
                          rf"\s*(?:Inference|no stats):\s*(?P<avg>{NUM})\s*$")
_INIT_SESSION = re.compile(rf"Initialized session in\s*(?P<ms>{NUM})\s*ms")
_THREADS = re.compile(r"^\s*(?:Num threads|#threads used for CPU inference):\s*\[(\d+)\]")
_GRAPH = re.compile(r"^\s*Graph:\s*\[(.*)\]\s*$")
_MEM_DELTA = re.compile(rf"Memory footprint delta from the start of the tool \(MB\):\s*init=(?P<init>{NUM})\s+"
                        rf"overall=(?P<overall>{NUM})")
_MEM_PEAK_OLD = re.compile(rf"Peak memory footprint \(MB\):\s*init=(?P<init>{NUM})\s+overall=(?P<overall>{NUM})")
_MEM_PEAK = re.compile(rf"Overall peak memory footprint \(MB\) via periodic monitoring:\s*(?P<peak>{NUM})")
_REPLACING = re.compile(r"Replacing (?P<n>\d+) out of (?P<m>\d+) node\(s\) with delegate \((?P<name>[^)]+)\) node"
                        r"(?:, yielding (?P<parts>\d+) partitions?)?")
_DELEGATE_CREATED = re.compile(r"(Created TensorFlow Lite delegate for GPU|GPU delegate created|"
                               r"Created TensorFlow Lite delegate for NNAPI|NNAPI delegate created|"
                               r"Hexagon delegate created|Created TensorFlow Lite delegate for Hexagon)", re.IGNORECASE)
_FAILURE = re.compile(r"(ERROR: Benchmarking failed|Benchmarking failed\.|Failed to (?:apply|invoke|allocate)|"
                      r"Segmentation fault|Aborted|CANNOT LINK EXECUTABLE|not executable|Permission denied)")
# benchmark_model's echo of its parameters ("Graph: [path]") and of the model it loaded: they hold the user's path,
# whose words ("Aborted", "Permission denied") are no failure
_ECHO_LINE = re.compile(r"^\s*(?:[A-Za-z#][^:\[\]]*:\s*\[.*\]|Loaded model .*)\s*$")
_ERROR_LINE = re.compile(r"^(?:ERROR|E/|E tflite|Error|Failed|CANNOT|.*(?:failed|error)).*", re.IGNORECASE)
_PROFILE_ROW = re.compile(rf"^\s*(?P<type>[A-Za-z_][\w:]*(?:\s[\w:]+)?)\s+(?:{NUM}\s+)?(?P<first>{NUM})\s+(?P<avg>{NUM})\s+"
                          rf"(?P<pct>{NUM})%\s+(?P<cdf>{NUM})%\s+(?P<mem>{NUM})\s+(?P<times>\d+)\s+(?P<name>\S.*?)\s*$")
_SUMMARY_ROW = re.compile(rf"^\s*(?P<type>[A-Za-z_][\w:]*(?:\s[\w:]+)?)\s+(?P<count>\d+)\s+(?P<avg>{NUM})\s+"
                          rf"(?P<pct>{NUM})%\s+(?P<cdf>{NUM})%\s+(?P<mem>{NUM})\s+(?P<times>\d+)\s*$")


class BenchmarkParseError(EdgepruneError):
    """benchmark_model's output is not that of a complete, successful run."""


def _f(text: str) -> float:
    return float(text)


def _complete_lines(text: str) -> list[str]:
    """Lines ended by a newline (a truncated last line is dropped)."""
    lines = text.split("\n")
    return lines[:-1]


def _error_lines(lines: list[str]) -> list[str]:
    found = [l.strip() for l in lines if _ERROR_LINE.match(l.strip()) and not l.strip().startswith("Error from ")]
    return found[-5:]


def _node_row(m) -> dict:
    """One node of a run-order table (a match of either table format: the same group names)."""
    return {"node_type": m["type"], "first_ms": _f(m["first"]), "avg_ms": _f(m["avg"]), "percent": _f(m["pct"]),
            "mem_kb": _f(m["mem"]), "times_called": int(m["times"]), "name": m["name"]}


def _type_row(m) -> dict:
    """One node type of a summary-by-node-type table."""
    return {"node_type": m["type"], "count": int(m["count"]), "avg_ms": _f(m["avg"]), "percent": _f(m["pct"]),
            "mem_kb": _f(m["mem"]), "times_called": int(m["times"])}


def parse_op_profile(lines: list[str]) -> dict:
    """Rows of the op-profiling tables: per node in run order, and totals per node type."""
    run_order, by_type, section = [], [], None
    for line in lines:
        if "Run Order" in line:
            section = "run"
        elif "Top by" in line:
            section = "top"
        elif "Summary by node type" in line:
            section = "summary"
        elif section == "run" and (m := _PROFILE_ROW.match(line)):
            run_order.append(_node_row(m))
        elif section == "summary" and (m := _SUMMARY_ROW.match(line)):
            by_type.append(_type_row(m))
    return {"run_order": run_order, "by_node_type": by_type}


CSV_RUNS_SECTION = "Operator-wise Profiling Info for Regular Benchmark Runs:"
_NUM = r"-?(?:[\d.]+(?:e[+-]?\d+)?|nan|inf)"
# stats_calculator.cc joins the cells with ", " and escapes nothing: node types such as "Convolution (NHWC, F32)
# IGEMM" hold commas themselves, so the rows are matched on their numeric cells, the type left of them
_CSV_RUN_ROW = re.compile(rf"^(?P<type>.+?), (?P<start>{_NUM}), (?P<first>{_NUM}), (?P<avg>{_NUM}), "
                          rf"(?P<pct>{_NUM})%, (?P<cdf>{_NUM})%, (?P<mem>{_NUM}), (?P<times>\d+), (?P<name>.*)$")
_CSV_TYPE_ROW = re.compile(rf"^(?P<type>.+?), (?P<count>\d+), (?P<avg>{_NUM}), (?P<pct>{_NUM})%, "
                           rf"(?P<cdf>{_NUM})%, (?P<mem>{_NUM}), (?P<times>\d+)$")


def parse_op_profile_csv(text: str) -> dict:
    """The op-profiling tables of the CSV file benchmark_model writes with ``--profiling_output_csv_file``
    (TensorFlow's ``tensorflow/lite/tools/benchmark/profiling_listener.cc`` writes the sections, and
    ``tensorflow/core/util/stats_calculator.cc`` with ``format_as_csv`` the rows: ``node type, start, first,
    avg_ms, %, cdf%, mem KB, times called, name`` and ``node type, count, avg_ms, avg %, cdf %, mem KB, times
    called``). Only the regular runs' section is read (not the initialisation's); the result has the layout of
    :func:`parse_op_profile`. A file without that section is a BenchmarkParseError."""
    lines = text.replace("\r\n", "\n").split("\n")
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == CSV_RUNS_SECTION)
    except StopIteration:
        raise BenchmarkParseError(f"the op-profiling CSV has no '{CSV_RUNS_SECTION}' section (benchmark_model "
                                  "stopped before its runs ended, or this is not its CSV)") from None
    run_order, by_type, section = [], [], None
    for line in lines[start + 1:]:
        stripped = line.strip()
        if stripped.startswith("====="):
            section = ("run" if "Run Order" in stripped else "summary" if "Summary by node type" in stripped
                       else "other")
        elif section == "run" and (m := _CSV_RUN_ROW.match(stripped)):
            run_order.append(_node_row(m))
        elif section == "summary" and (m := _CSV_TYPE_ROW.match(stripped)):
            by_type.append(_type_row(m))
    if not run_order:
        raise BenchmarkParseError("the op-profiling CSV's regular-runs section has no per-node rows")
    return {"run_order": run_order, "by_node_type": by_type}


def parse_benchmark_output(text: str, target: str = "device", model: str | None = None) -> BenchResult:
    """The result of one benchmark_model run, or BenchmarkParseError for a failed or incomplete one."""
    if not isinstance(text, str):
        raise BenchmarkParseError("benchmark output must be text")
    raw_lines = _complete_lines(text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = [_LOG_PREFIX.sub("", l, count=1) for l in raw_lines]
    summary_index, summary = None, None
    for i, line in enumerate(lines):
        m = _NEW_SUMMARY.search(line) or _OLD_SUMMARY.search(line)
        if m:
            summary_index, summary = i, m
    failures = [l.strip() for l in lines if _FAILURE.search(l) and not _ECHO_LINE.match(l)]
    if failures:
        raise BenchmarkParseError("benchmark_model failed: " + " | ".join(dict.fromkeys(failures + _error_lines(lines))))
    if summary is None:
        detail = _error_lines(lines)
        raise BenchmarkParseError("no complete timing summary in the benchmark output (the run failed or the log is "
                                  "truncated)" + (": " + " | ".join(detail) if detail else ""))
    counts = [(i, _COUNT.match(l)) for i, l in enumerate(lines[:summary_index])]
    counts = [(i, m) for i, m in counts if m]
    if not counts:  # old builds: only the profiler's line for the regular runs
        counts = [(i, m) for i, l in enumerate(lines[:summary_index]) if (m := _PROFILER_COUNT.match(l))]
    if not counts:
        raise BenchmarkParseError("the benchmark output has a summary but no 'count=' statistics line for the runs")
    stats = dict((k, _f(v)) for k, v in _FIELD.findall(counts[-1][1]["rest"]))
    runs = int(counts[-1][1]["count"])
    if runs < 1 or "avg" not in stats:
        raise BenchmarkParseError("the runs' statistics line has no runs or no average")
    groups = summary.groupdict()
    init_us = _f(groups["init"])
    first_us = _f(groups["first"]) if groups.get("first") else None
    warmup_avg = _f(groups["warmup"])
    if first_us is None and len(counts) >= 2:
        first_us = dict((k, _f(v)) for k, v in _FIELD.findall(counts[0][1]["rest"])).get("first")

    threads = graph = mem_overall = mem_peak = None
    delegates = []
    for line in lines:
        if (m := _THREADS.search(line)) and threads is None:
            threads = int(m[1])
        elif (m := _GRAPH.search(line)) and graph is None:
            graph = m[1]
        if m := (_MEM_DELTA.search(line) or _MEM_PEAK_OLD.search(line)):
            mem_overall = _f(m["overall"])
        if m := _MEM_PEAK.search(line):
            mem_peak = _f(m["peak"])
        if m := _REPLACING.search(line):
            delegates.append({"name": m["name"], "delegated_nodes": int(m["n"]), "total_nodes": int(m["m"]),
                              "partitions": int(m["parts"]) if m["parts"] else None})
    last = delegates[-1] if delegates else None
    profile = parse_op_profile(lines)
    warnings = []
    created = sorted({m[1] for l in lines if (m := _DELEGATE_CREATED.search(l))})
    accelerated = [d for d in delegates if "XNNPack" not in d["name"]]
    if created and not accelerated:
        warnings.append(f"a delegate was created ({created[0]}) but no node was given to it: the model ran on the "
                        "CPU (silent fallback)")
    for line in lines:
        if m := _PARTIAL.search(line):
            warnings.append(f"the delegate took only part of the graph ({m['k']} delegate kernels); the rest runs "
                            "on the CPU")
        if m := _NOT_EXECUTED.search(line):
            warnings.append(f"the {m['name']} delegate was applied but executed nothing: the model ran on the CPU "
                            "(silent fallback)")
    for d in delegates:
        if d["delegated_nodes"] < d["total_nodes"]:
            warnings.append(f"{d['name']} took {d['delegated_nodes']} of {d['total_nodes']} nodes; the rest run on "
                            "the CPU")
    result = BenchResult(
        target=target, runner="benchmark_model", model=model or graph or "", model_size_bytes=None,
        num_threads=threads, delegate=last["name"] if last else None, runs=runs, init_us=init_us, first_us=first_us,
        warmup_avg_us=warmup_avg, avg_us=_f(groups["avg"]), std_us=stats.get("std"), min_us=stats.get("min"),
        max_us=stats.get("max"), median_us=stats.get("median"), p5_us=stats.get("p5"), p95_us=stats.get("p95"),
        mem_overall_mb=mem_overall, mem_peak_rss_mb=mem_peak,
        delegated_nodes=last["delegated_nodes"] if last else None, total_nodes=last["total_nodes"] if last else None,
        delegate_partitions=last["partitions"] if last else None, delegates=delegates,
        op_profile=profile if profile["run_order"] or profile["by_node_type"] else None, warnings=warnings,
    )
    return result
