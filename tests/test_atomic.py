import json
import os
from pathlib import Path
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


def _failing_on_call(n, real, into=None):
    """``os.replace`` that raises on its n-th call (into folder ``into``, when given): a kill between two renames."""
    calls = []

    def replace(src, dst):
        if into is not None and Path(dst).parent != into:
            return real(src, dst)
        calls.append(dst)
        if len(calls) == n:
            raise KeyboardInterrupt("killed between two renames")
        return real(src, dst)

    return replace


def test_a_kill_between_two_renames_is_rolled_forward(tmp_path, monkeypatch):
    from edgeprune.core import atomic
    from edgeprune.core.atomic import settle, staged_files

    out = tmp_path / "out"
    with staged_files(out, ["a", "b"]) as stage:
        (stage / "a").write_text("old a")
        (stage / "b").write_text("old b")
    monkeypatch.setattr(atomic.os, "replace", _failing_on_call(2, os.replace))
    with pytest.raises(KeyboardInterrupt):
        with staged_files(out, ["a", "b"]) as stage:
            (stage / "a").write_text("new a")
            (stage / "b").write_text("new b")
    monkeypatch.undo()
    # the set was committed before the first rename: the next reader or writer of the folder completes it
    assert settle(out) == ["a", "b"]
    assert ((out / "a").read_text(), (out / "b").read_text()) == ("new a", "new b")
    assert sorted(p.name for p in out.iterdir()) == ["a", "b"]


def test_a_kill_before_the_commit_leaves_the_old_set_and_no_stage(tmp_path, monkeypatch):
    from edgeprune.core import atomic
    from edgeprune.core.atomic import settle, staged_files

    out = tmp_path / "out"
    with staged_files(out, ["a", "b"]) as stage:
        (stage / "a").write_text("old a")
        (stage / "b").write_text("old b")
    monkeypatch.setattr(atomic, "_commit", lambda *args: (_ for _ in ()).throw(KeyboardInterrupt("killed")))
    with pytest.raises(KeyboardInterrupt):
        with staged_files(out, ["a", "b"]) as stage:
            (stage / "a").write_text("new a")
            (stage / "b").write_text("new b")
    monkeypatch.undo()
    assert settle(out) == []
    assert ((out / "a").read_text(), (out / "b").read_text()) == ("old a", "old b")
    assert sorted(p.name for p in out.iterdir()) == ["a", "b"]


def test_staged_and_atomic_files_are_synced_before_they_are_renamed(tmp_path, monkeypatch):
    from edgeprune.core import atomic
    from edgeprune.core.atomic import staged_files

    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: (events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))),
                                                        real_fsync(fd))[1])
    monkeypatch.setattr(atomic.os, "replace", lambda src, dst: (events.append(("replace", str(dst))),
                                                                real_replace(src, dst))[1])
    out = tmp_path / "out"
    with staged_files(out, ["a", "b"]) as stage:
        (stage / "a").write_text("1")
        (stage / "b").write_text("2")
    renames = [i for i, (kind, path) in enumerate(events) if kind == "replace" and Path(path).parent == out]
    synced = {Path(path).name for kind, path in events[:renames[0]] if kind == "fsync"}
    assert {"a", "b"} <= synced  # both files' data reached the disk before the first rename
    assert events[-1] == ("fsync", str(out))  # and the folder's entries after the last


def test_settle_removes_a_dead_writers_uncommitted_stage_and_keeps_a_live_ones(tmp_path):
    from edgeprune.core.atomic import STAGE_PREFIX, settle

    dead = tmp_path / f"{STAGE_PREFIX}999999999-x"  # above any pid_max: no such process
    live = tmp_path / f"{STAGE_PREFIX}{os.getpid()}-y"
    for stage in (dead, live):
        stage.mkdir()
        (stage / "a").write_text("half")
    assert settle(tmp_path) == []
    assert [p.name for p in tmp_path.iterdir()] == [live.name]


def test_readers_of_models_and_plans_complete_an_interrupted_set_first(tmp_path, monkeypatch):
    from edgeprune.core import atomic
    from edgeprune.core.modelio import load_model, save_model
    from edgeprune.prune.plan import PruningPlan
    from keras_models import build_edsr

    model = build_edsr(num_blocks=1, num_features=2)
    for reader, name in ((load_model, "pruned.keras"), (PruningPlan.load, "plan.json")):
        out = tmp_path / name.split(".")[0]
        monkeypatch.setattr(atomic.os, "replace", _failing_on_call(1, os.replace, out))  # killed before the first move
        with pytest.raises(KeyboardInterrupt):
            with atomic.staged_files(out, [name]) as stage:
                save_model(model, stage / name) if name.endswith(".keras") else \
                    (stage / name).write_text(json.dumps({"format": "edgeprune.plan", "version": 1, "model": "m",
                                                          "fingerprint": "f", "groups": {}}))
        monkeypatch.undo()
        assert not (out / name).exists()
        reader(out / name)  # finds the file: the committed set was completed before reading
        assert [p.name for p in out.iterdir()] == [name]
