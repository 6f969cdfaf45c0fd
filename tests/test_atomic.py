import os
import stat

import pytest

from edgeprune.core.atomic import atomic_path


def test_success_replaces_with_normal_permissions(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    with atomic_path(target) as tmp:
        tmp.write_text("new")
        assert not target.exists()
    assert target.read_text() == "new"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in target.parent.iterdir()] == ["out.txt"]


def test_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_staged_files_appear_together_or_not_at_all(tmp_path):
    from edgeprune.core.atomic import staged_files

    with staged_files(tmp_path / "out", ["a", "b"]) as stage:
        (stage / "a").write_text("1")
        (stage / "b").write_text("2")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a", "b"]
    with pytest.raises(RuntimeError):
        with staged_files(tmp_path / "out2", ["a", "b"]) as stage:
            (stage / "a").write_text("1")
            raise RuntimeError("failed before b")
    assert list((tmp_path / "out2").iterdir()) == []
