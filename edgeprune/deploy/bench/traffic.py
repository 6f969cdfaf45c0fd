"""DRAM traffic of a .tflite measured on the host by cache simulation: LiteRT (its default XNNPACK delegate, the
host worker of :mod:`edgeprune.deploy.bench.host`) runs under Valgrind's Cachegrind with a stated cache hierarchy.

Steady-state inference is isolated by a difference of runs, as the device path does with simpleperf: one run makes
1 inference, the other 1 + N, both from the same start-up (load, weight packing, random input with a fixed seed,
hash seed and BLAS threads fixed); the difference of their counts divided by N is one inference after the first.
DRAM traffic per inference is counted in last-level (LL) cache lines: reads = LL read misses (data and
instructions), writes = LL write misses (the lines that stores bring in; Cachegrind's write-allocate LL writes each
back once it is evicted dirty, which it does not count separately). Bytes = lines x the LL line size.

Valgrind does not emulate AVX-512, so XNNPACK selects other kernels than a native run on an AVX-512 CPU; the
kernels it ran are read from Cachegrind's per-function counts (XNNPACK's micro-kernel names end with their ISA) and
reported. Those counts are per function, and every conv of a graph runs the same few micro-kernels, so they give no
per-layer attribution.
"""

import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from edgeprune.core.errors import EdgepruneError, InvalidArgumentError, MissingDependencyError

EVENTS = ("Ir", "I1mr", "ILmr", "Dr", "D1mr", "DLmr", "Dw", "D1mw", "DLmw")
"""Cachegrind's cache events (instruction reads, data reads, data writes; their L1 and LL misses)."""

DEFAULT_INPUT_SIZE = (16, 16)
"""Input size of a traffic measurement unless one is given: the README's EDSR x2 16x64 baseline and its pruned
model are measured at it in under 3 minutes on a 2-core CPU (164 s, docs/memory_traffic.md); Cachegrind runs these
XNNPACK kernels thousands of times slower than native, and 32x32 takes over 5 minutes."""

INSTALL_HINT = "install it with 'apt-get install valgrind'"
_UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1024, "KIB": 1024, "M": 1024 ** 2, "MB": 1024 ** 2, "MIB": 1024 ** 2}
_LEVELS = {"L1I": "l1i", "I1": "l1i", "L1D": "l1d", "D1": "l1d", "LL": "ll"}


@dataclass(frozen=True)
class Cache:
    """One simulated cache: total bytes, ways, line bytes (Cachegrind needs a power-of-two number of sets and lines
    of at least 16 bytes)."""

    size: int
    assoc: int
    line: int

    def option(self) -> str:
        return f"{self.size},{self.assoc},{self.line}"

    def label(self) -> str:
        size = f"{self.size // 1024 ** 2} MiB" if self.size % 1024 ** 2 == 0 else (
            f"{self.size // 1024} KiB" if self.size % 1024 == 0 else f"{self.size} B")
        return f"{size} {self.assoc}-way"


@dataclass(frozen=True)
class CacheHierarchy:
    """The two levels Cachegrind simulates: L1 (instructions and data) and one last level."""

    name: str
    l1i: Cache
    l1d: Cache
    ll: Cache

    def options(self) -> list[str]:
        return [f"--I1={self.l1i.option()}", f"--D1={self.l1d.option()}", f"--LL={self.ll.option()}"]

    def describe(self) -> str:
        return (f"{self.name}: L1I {self.l1i.label()}, L1D {self.l1d.label()}, LL {self.ll.label()}, "
                f"{self.ll.line} B lines")

    def to_dict(self) -> dict:
        return {"name": self.name, **{level: asdict(getattr(self, level)) for level in ("l1i", "l1d", "ll")}}


PHONE_CACHES = CacheHierarchy(
    "phone-2m (a Cortex-A76-class big core: 64 KiB 4-way L1I and L1D; a 2 MiB 16-way shared L3 as the last level, "
    "as Snapdragon 855-class SoCs)", Cache(64 * 1024, 4, 64), Cache(64 * 1024, 4, 64), Cache(2 * 1024 ** 2, 16, 64))
"""The default hierarchy. Cachegrind simulates two levels, so the private L2 of such a core is not modelled."""


def parse_size(text: str) -> int:
    """Bytes in ``text``: an integer with an optional K or M suffix (binary units: 32K = 32768)."""
    m = re.fullmatch(r"\s*(\d+)\s*([A-Za-z]*)\s*", text)
    unit = _UNITS.get(m[2].upper()) if m else None
    if unit is None:
        raise InvalidArgumentError(f"cache size {text!r} is not a size: give bytes, or K or M (e.g. 32K, 2M)")
    return int(m[1]) * unit


def check_cache(level: str, cache: Cache) -> Cache:
    """``cache`` if Cachegrind can simulate it, else an InvalidArgumentError naming the level."""
    what = f"cache {level}={cache.size},{cache.assoc},{cache.line}"
    if min(cache.size, cache.assoc, cache.line) < 1:
        raise InvalidArgumentError(f"{what}: size, ways and line size must be positive")
    if cache.line < 16 or cache.line & (cache.line - 1):
        raise InvalidArgumentError(f"{what}: the line size must be a power of two of at least 16 bytes")
    sets, rest = divmod(cache.size, cache.assoc * cache.line)
    if rest or sets < 1 or sets & (sets - 1):
        raise InvalidArgumentError(f"{what}: size / (ways x line) must be a power of two (the number of sets)")
    return cache


def parse_caches(specs=None, base: CacheHierarchy = PHONE_CACHES) -> CacheHierarchy:
    """The hierarchy ``base`` with the levels named in ``specs`` replaced. Each spec holds entries
    ``LEVEL=SIZE,WAYS,LINE`` separated by spaces; LEVEL is L1I (or I1), L1D (or D1) or LL."""
    if isinstance(specs, str):
        specs = [specs]
    entries = [e for spec in specs or () for e in spec.split()]
    if not entries:
        return base
    changed = {}
    for entry in entries:
        level, _, value = entry.partition("=")
        parts = value.split(",")
        if level.upper() not in _LEVELS or len(parts) != 3:
            raise InvalidArgumentError(f"--cache entry {entry!r} is not LEVEL=SIZE,WAYS,LINE with LEVEL one of L1I, "
                                       "L1D, LL (e.g. LL=2M,16,64)")
        try:
            ways, line = int(parts[1]), int(parts[2])
        except ValueError:
            raise InvalidArgumentError(f"--cache entry {entry!r}: ways and line size must be integers") from None
        changed[_LEVELS[level.upper()]] = check_cache(level.upper(), Cache(parse_size(parts[0]), ways, line))
    return replace(base, name="custom (" + " ".join(entries) + ")", **changed)


def find_valgrind() -> str:
    """The path of the ``valgrind`` executable, or a MissingDependencyError that says how to install it."""
    path = shutil.which("valgrind")
    if not path:
        raise MissingDependencyError(f"valgrind is not installed (--memory-traffic on the host runs Cachegrind): "
                                     f"{INSTALL_HINT}")
    return path


def parse_cachegrind(text: str) -> tuple[dict[str, int], dict[str, int]]:
    """(totals per event, instruction reads per function) of a Cachegrind output file."""
    events, totals, per_fn, fn = None, None, {}, None
    for line in text.splitlines():
        if line.startswith("events:"):
            events = line.split()[1:]
        elif line.startswith("summary:"):
            totals = [int(v) for v in line.split()[1:]]
        elif line.startswith("fn="):
            fn = line[3:]
        elif fn is not None and line[:1].isdigit():
            values = line.split()
            if len(values) > 1:
                per_fn[fn] = per_fn.get(fn, 0) + int(values[1])
    if events is None or totals is None or len(events) != len(totals):
        raise EdgepruneError("Cachegrind wrote no complete output file (no 'events:' and 'summary:' lines): run it "
                             "again; if it persists, check the valgrind installation")
    return dict(zip(events, totals)), per_fn


def xnnpack_kernels(ir_per_function: dict[str, int], top: int = 5) -> dict:
    """The XNNPACK micro-kernels that ran (names ``xnn_..._ukernel_...__<isa>_...``): the ISA of the one with the most
    instruction reads, each ISA's share of the micro-kernels' instructions and the ``top`` kernels."""
    kernels = {}
    for fn, ir in ir_per_function.items():
        name = fn.rsplit(":", 1)[-1]
        if name.startswith("xnn_") and "ukernel" in name:
            kernels[name] = kernels.get(name, 0) + ir
    total = sum(kernels.values())
    if not total:
        return {"isa": None, "isa_share": {}, "top": []}
    shares = {}
    for name, ir in kernels.items():
        shares[_kernel_isa(name)] = shares.get(_kernel_isa(name), 0) + ir / total
    ranked = sorted(kernels.items(), key=lambda kv: -kv[1])
    return {"isa": _kernel_isa(ranked[0][0]),
            "isa_share": {k: round(v, 4) for k, v in sorted(shares.items(), key=lambda kv: -kv[1])},
            "top": [[name, round(ir / total, 4)] for name, ir in ranked[:top]]}


def _kernel_isa(name: str) -> str:
    """The ISA of an XNNPACK micro-kernel name: the first word after ``__`` that is not a tile size (``1x1``)."""
    words = name.partition("__")[2].split("_")
    return next((w for w in words if w and not re.fullmatch(r"[\dx]+", w)), "unknown")


def host_simd_flags() -> list[str]:
    """The SIMD flags of this CPU that XNNPACK selects kernels by (from /proc/cpuinfo; empty where unreadable)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    m = re.search(r"^flags\s*:(.*)$", text, re.M)
    flags = set(m[1].split()) if m else set()
    return [f for f in ("sse4_1", "avx", "fma", "avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni")
            if f in flags]


def conv_ops_at(path, input_size) -> list:
    """The conv ops (:class:`~edgeprune.deploy.tflite_reader.TfliteOp`) of a .tflite with its input resized to
    ``input_size`` (H, W): LiteRT's reference kernels (no delegate) propagate the shapes; nothing is run."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from edgeprune.deploy.bench.host_worker import resize_input
    from edgeprune.deploy.tflite_reader import TfliteGraph, TfliteOp

    graph = TfliteGraph.read(path)
    interpreter = Interpreter(model_path=str(path),
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    resize_input(interpreter, input_size)
    try:
        interpreter.allocate_tensors()
    except (RuntimeError, ValueError) as exc:
        size = "x".join(map(str, input_size))
        raise InvalidArgumentError(f"'{path}' cannot be resized to {size} ({str(exc).splitlines()[0][:200]}): export "
                                   f"it at that size ('edgeprune export --input-size {size}')") from None
    shapes = {d["index"]: tuple(int(v) for v in d["shape"]) for d in interpreter.get_tensor_details()}
    details = interpreter._get_ops_details()  # noqa: SLF001 (as host_worker.delegate_partitions; no public API)
    ops = []
    for op in graph.conv_ops():
        d = details[op.index]
        ops.append(TfliteOp(op.index, op.name, tuple(shapes.get(int(t), ()) for t in d["inputs"]),
                            tuple(shapes.get(int(t), ()) for t in d["outputs"]), op.output_names, op.input_types))
    return ops


def analytical_bw(path, input_size=None) -> dict:
    """The analytical conv cost (:func:`~edgeprune.deploy.tflite_reader.conv_cost`) of a .tflite at ``input_size``
    (H, W; None: the file's own), with the dtype it was counted at (fp32, fp16 or int8, from the conv weights)."""
    from edgeprune.deploy.tflite_reader import TfliteGraph, conv_cost
    from edgeprune.graph.cost import TFLITE_DTYPES

    graph = TfliteGraph.read(path)
    own = graph.input_shapes[0][1:3] if graph.input_shapes and len(graph.input_shapes[0]) == 4 else None
    ops = graph.conv_ops() if input_size is None or tuple(input_size) == tuple(own or ()) else conv_ops_at(
        path, input_size)
    weight_type = graph.weight_dtype()
    return {**conv_cost(ops, weight_type), "dtype": TFLITE_DTYPES.get(weight_type, "fp32"),
            "input_size": list(input_size or own or [])}


def _run_all(commands: list[list[str]], env: dict, timeout_s: float, path) -> list[subprocess.CompletedProcess]:
    """Runs the commands side by side; past ``timeout_s`` kills every one still running and raises."""
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for c in commands]
    deadline = time.monotonic() + timeout_s
    done = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=max(deadline - time.monotonic(), 0.01))
            done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    except subprocess.TimeoutExpired:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
        raise EdgepruneError(f"the memory-traffic measurement of '{path}' did not finish within {timeout_s:.0f} s "
                             "and was stopped: give a smaller --input-size or a larger --timeout") from None
    return done


def measure_traffic(model_path, input_size=DEFAULT_INPUT_SIZE, caches: CacheHierarchy = PHONE_CACHES,
                    runs: int = 1, num_threads: int = 1, timeout_s: float = 900.0) -> dict:
    """DRAM traffic of one steady-state inference of a .tflite at ``input_size`` (H, W; None: the file's own) under
    Cachegrind with ``caches``: the ``memory_traffic`` field of the benchmark result (the device path's keys
    ``events_per_inference``, ``line_bytes``, ``bytes_per_inference``, ``method``; with ``read_bytes_per_inference``,
    ``write_bytes_per_inference``, the analytical BW of the same graph at the same size and element type, their
    ratio, the cache hierarchy and the XNNPACK kernels that ran). ``runs`` is N of the (1 + N) - 1 difference."""
    from edgeprune.core.checks import integer_at_least
    from edgeprune.deploy.bench.host import check_tflite_file, worker_command, worker_failure

    path = check_tflite_file(model_path)
    integer_at_least("runs", runs)
    integer_at_least("--num-threads", num_threads)
    for level in ("l1i", "l1d", "ll"):
        check_cache(level.upper(), getattr(caches, level))
    valgrind = find_valgrind()
    analytical = analytical_bw(path, input_size)  # also refuses a graph that cannot be resized, before the runs
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    version = subprocess.run([valgrind, "--version"], capture_output=True, text=True).stdout.strip()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edgeprune-cachegrind-") as tmp:
        outs = [Path(tmp) / f"cachegrind.{n}.out" for n in (0, runs)]
        commands = [[valgrind, "--tool=cachegrind", "--cache-sim=yes", *caches.options(),
                     f"--cachegrind-out-file={out}", *worker_command(path, num_threads, 1, n, 0.0, input_size)]
                    for out, n in zip(outs, (0, runs))]
        procs = _run_all(commands, env, timeout_s, path)
        for proc in procs:
            if proc.returncode != 0:
                stderr = "\n".join(l for l in proc.stderr.splitlines() if not l.startswith("=="))
                raise worker_failure(path, stderr, input_size)
        (one, _), (many, per_fn) = (parse_cachegrind(out.read_text()) for out in outs)
    wall_s = time.perf_counter() - start
    per_inference = {e: (many.get(e, 0) - one.get(e, 0)) / runs for e in EVENTS}
    line = caches.ll.line
    read_bytes = (per_inference["DLmr"] + per_inference["ILmr"]) * line
    write_bytes = per_inference["DLmw"] * line
    total = read_bytes + write_bytes
    return {
        "method": f"Cachegrind ({version}) around LiteRT with XNNPACK: (counts of 1 + {runs} inferences - counts of "
                  f"1) / {runs}; read bytes = LL read misses (data and instructions) x line size, write bytes = LL "
                  "write misses x line size (write-backs are not counted by Cachegrind)",
        "simulator": version, "caches": caches.to_dict(), "line_bytes": line,
        "input_size": analytical["input_size"], "runs": runs, "num_threads": num_threads,
        "events_per_inference": per_inference, "read_bytes_per_inference": read_bytes,
        "write_bytes_per_inference": write_bytes, "bytes_per_inference": total,
        "analytical": analytical,
        "traffic_to_bw": total / analytical["bw_bytes"] if analytical["bw_bytes"] else None,
        "xnnpack": xnnpack_kernels(per_fn), "host_simd_flags": host_simd_flags(), "wall_s": wall_s,
    }
