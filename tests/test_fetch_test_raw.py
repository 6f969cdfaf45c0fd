"""tools/fetch_test_raw.sh builds its deb-src entries from the machine's own apt configuration and names no host."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "fetch_test_raw.sh"
pytestmark = pytest.mark.skipif(shutil.which("apt-config") is None, reason="needs apt-config (Debian/Ubuntu)")


def sources(tmp_path, sources_list: str | None, parts: dict[str, str]):
    etc = tmp_path / "etc"
    (etc / "parts").mkdir(parents=True)
    if sources_list is not None:
        (etc / "sources.list").write_text(sources_list)
    for name, text in parts.items():
        (etc / "parts" / name).write_text(text)
    conf = tmp_path / "apt.conf"
    conf.write_text(f'Dir::Etc::sourcelist "{etc / "sources.list"}";\nDir::Etc::sourceparts "{etc / "parts"}";\n')
    return subprocess.run(["bash", str(SCRIPT), "--print-sources"], capture_output=True, text=True,
                          env={**os.environ, "APT_CONFIG": str(conf)}, timeout=60)


def test_deb822_and_one_line_entries_become_deb_src(tmp_path):
    proc = sources(tmp_path, "# comment\ndeb http://mirror.example/debian bookworm main\n", {
        "a.sources": "# a comment\nTypes: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n"
                     "Components: main\n\nTypes: deb\nURIs: http://off.example/debian\nSuites: x\n"
                     "Components: main\nEnabled: no\n",
        "b.list": "deb [arch=amd64] http://other.example/d stable main\ndeb-src http://kept.example/ s main\n",
    })
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Types: deb-src\nURIs: http://mirror.example/debian\nSuites: bookworm\nComponents: main\n" in out
    assert "off.example" not in out and "# a comment" not in out  # disabled stanzas and comments dropped
    assert "deb-src http://mirror.example/debian bookworm main" in out
    assert "deb-src [arch=amd64] http://other.example/d stable main" in out
    assert "kept.example" not in out  # only 'deb' lines are turned into sources


def test_no_deb_entry_is_a_clear_error(tmp_path):
    proc = sources(tmp_path, None, {"x.sources": "Types: deb-src\nURIs: http://x.example/\nSuites: s\n"})
    assert proc.returncode == 1 and "has no 'deb' entry to fetch sources from" in proc.stderr


def test_the_script_names_no_host():
    text = SCRIPT.read_text()
    assert "http://" not in text and "https://" not in text
