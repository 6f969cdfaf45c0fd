"""The repository speaks of the product: no words about how it was made ("session", "issue 12", "acceptance", "our
claim", "the seeds'", first-person notes, commit hashes in prose) in the package, tests, data files, models, Android
scripts, examples, tools, the README, BENCHMARKS.md, ARCHITECTURE.md or docs/, no citation of a specification that is
not in the repository, and every BENCHMARKS.md section the code cites is a section there."""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("edgeprune", "tests", "keras_models", "android_bench", "examples", "tools", "docs", "README.md",
           "BENCHMARKS.md", "ARCHITECTURE.md")
TEXT_SUFFIXES = {".py", ".md", ".txt", ".sh", ".c", ".json", ".toml", ".cfg", ".csv", ""}

_HASH = r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,12}\b"  # an abbreviated git commit hash
WORDS = re.compile(
    r"session|\bissue \d+|acceptance|our claim|SPEC\.md|the seeds'|\bthe seed (?:paper|does|describes)"
    # first-person notes about the work
    r"|\b(?:we|I)\s+(?:measured|found|tried|saw|ran|checked|decided|chose|think|believe|presume)\b|\byesterday\b"
    r"|\bour (?:reading|targets?|claims?)\b"
    # a commit hash in prose: "commit 6bbbeb2", "(6bbbeb2) commit", "a fresh clone of 5f33566"
    rf"|\bcommit(?:s|ted)?\W{{0,3}}(?:of\s+|at\s+)?`?{_HASH}|{_HASH}`?\W{{0,3}}commit|\b(?:clone|worktree) of `?{_HASH}",
    re.IGNORECASE)
# real uses: TensorFlow 1's Session, Keras' clear_session, benchmark_model's own output line, pytest's fixture scope,
# the upstream TensorFlow commit that tests/data/benchmark_model/SOURCES.md names as a sample's origin
ALLOWED = re.compile(r"(?:tf\.compat\.)?v1\.Session|clear_session|Initialized session in|_INIT_SESSION|"
                     r"scope=\"session\"|TF commit `[0-9a-f]+…`")


def _files():
    for folder in SCANNED:
        for path in [ROOT / folder] if (ROOT / folder).is_file() else sorted((ROOT / folder).rglob("*")):
            if path.is_file() and path.suffix in TEXT_SUFFIXES and "__pycache__" not in path.parts \
                    and path != Path(__file__).resolve():
                yield path


def test_no_words_about_how_the_work_was_done():
    found = []
    for path in _files():
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if WORDS.search(ALLOWED.sub("", line)):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == []


def test_the_scan_sees_what_it_should_and_allows_only_real_uses():
    names = {p.relative_to(ROOT).as_posix() for p in _files()}
    assert {"edgeprune/cli.py", "tests/conftest.py", "android_bench/run_on_device.sh",
            "tests/data/benchmark_model/SOURCES.md", "examples/custom_loop.py", "README.md", "BENCHMARKS.md",
            "ARCHITECTURE.md", "docs/memory_traffic.md", "tools/run_benchmarks.py"} <= names
    for line in ("see session 4", "before issue 12", "the acceptance figures", "our claim: MAC", "SPEC.md section 2",
                 "the seeds' other methods", "a Session of work", "The seed does not describe its tweaks",
                 "we measured yesterday", "I tried 300 steps", "Our reading: the paper left it out",
                 "a fresh clone of commit 0091ceb", "(6bbbeb2) commit", "from a fresh clone of 5f33566, idle",
                 "commit `abb9074`"):
        assert WORDS.search(ALLOWED.sub("", line)), line
    for line in ("with tf.compat.v1.Session(graph=g) as s:", "keras.backend.clear_session()",
                 "Initialized session in 3.2ms.", '@pytest.fixture(scope="session")', "np.random.seed(0)",
                 "the runs at every seed (--seed N)", "our model against the original network",
                 "the commit point is one rename", "a nightly build (TF commit `05bef3f7…`) that prints",
                 "tensorflow/tensorflow @ `08df8c40b4376ed012fa3ba03ff3e3068d8d2a94`", "conv 1x1 of 64 channels"):
        assert not WORDS.search(ALLOWED.sub("", line)), line


def _benchmark_citations():
    """(file, quoted section) for every ``BENCHMARKS.md, "..."`` in the package's and tools' Python sources, quotes
    that wrap onto a comment's next line included."""
    for folder in ("edgeprune", "keras_models", "tests", "tools", "examples"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path == Path(__file__).resolve():
                continue
            text = re.sub(r"\s*\n\s*(?:#\s*)?", " ", path.read_text())
            for match in re.finditer(r"BENCHMARKS\.md(?:'s table)?,? \"([^\"]+)\"", text):
                yield path.relative_to(ROOT).as_posix(), match[1]


def test_every_cited_benchmarks_section_is_there():
    headings = [line.lstrip("#").strip().lower() for line in (ROOT / "BENCHMARKS.md").read_text().splitlines()
                if line.startswith("#")]
    citations = list(_benchmark_citations())
    assert len(citations) >= 8  # the scan finds the citations (latency, loop, presets, runtime, widths, ...)
    missing = [(f, s) for f, s in citations if not any(s.lower() in h for h in headings)]
    assert missing == []


def test_a_citation_of_a_missing_section_would_be_found(tmp_path, monkeypatch):
    source = tmp_path / "edgeprune" / "m.py"
    source.parent.mkdir()
    source.write_text('# measured (BENCHMARKS.md, "Host latency model:\n# calibration") and (BENCHMARKS.md, "Nowhere")\n')
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert list(_benchmark_citations()) == [("edgeprune/m.py", "Host latency model: calibration"),
                                            ("edgeprune/m.py", "Nowhere")]
