"""tools/registry_photos.py without network or dpkg: the leak check (a resized, cropped or re-encoded copy of a
validation photo is flagged, a different photo passes), the folder and manifest written from a fake extracted
package tree, refusing an existing folder, and the one-line errors for a missing allow-listed file or package."""

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from edgeprune.data.photos import BUILTIN_PHOTOS, builtin_photo, load_rgb

OPENCV_PNG = "usr/share/doc/opencv-doc/examples/data/chicky_512.png"
OPENCV_JPG = "usr/share/doc/opencv-doc/examples/data/fruits.jpg"
JXL_PNG = "usr/share/libjxl-testdata/jxl/flower/flower.png"


@pytest.fixture(scope="module")
def rp():
    from conftest import load_tool

    return load_tool("registry_photos")


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    return load_rgb(buf)


def resized(image: np.ndarray, factor: float) -> np.ndarray:
    h, w = image.shape[:2]
    return np.asarray(Image.fromarray(image).resize((round(w * factor), round(h * factor)),
                                                    Image.Resampling.BICUBIC))


def photo_like(seed: int, height: int, width: int) -> np.ndarray:
    """Blurred colour noise: textured like a photo, related to no real one."""
    noise = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(noise).filter(ImageFilter.GaussianBlur(3)))


def sim(rp, a, b) -> float:
    return rp.similarity(rp.Fingerprint(a), rp.Fingerprint(b))


def test_copies_of_a_validation_photo_are_flagged_and_other_photos_pass(rp):
    astronaut, coffee = builtin_photo("astronaut.png"), builtin_photo("coffee.png")
    copies = {"resized and re-encoded": jpeg(resized(astronaut, 0.6), 75),
              "off-centre crop": astronaut[40:380, 150:500],
              "crop, enlarged, re-encoded": jpeg(resized(astronaut[200:480, 20:330], 1.3), 80),
              "mirrored": astronaut[:, ::-1]}
    for what, copy in copies.items():
        assert sim(rp, copy, astronaut) >= rp.THRESHOLD, what
    # a validation photo cut out of a larger training image is found too
    assert sim(rp, np.pad(coffee, ((60, 0), (0, 200), (0, 0)), mode="reflect"), coffee) >= rp.THRESHOLD
    assert sim(rp, coffee, astronaut) < rp.THRESHOLD
    assert sim(rp, builtin_photo("chelsea.png"), coffee) < rp.THRESHOLD
    assert sim(rp, photo_like(0, 300, 400), astronaut) < rp.THRESHOLD


def test_the_leak_check_names_the_pair_or_reports_the_highest_similarity(rp):
    coffee = builtin_photo("coffee.png")
    val = {"coffee.png": coffee}
    with pytest.raises(rp.LeakError, match=r"x__crop\.png looks like validation photo coffee\.png"):
        rp.leak_check({"x__other.png": photo_like(1, 256, 256), "x__crop.png": jpeg(coffee[50:350, 100:500], 85)},
                      val)
    check = rp.leak_check({"x__other.png": photo_like(1, 256, 256)}, val)
    assert check["train"] == "x__other.png" and check["val"] == "coffee.png"
    assert 0 < check["max"] < check["threshold"] == rp.THRESHOLD


def fake_tree(root: Path, images: dict) -> dict:
    """Writes ``images`` (package -> {path: array}) as an extracted tree; returns select_sources' roots."""
    roots = {}
    for package, files in images.items():
        for path, image in files.items():
            file = root / package / path
            file.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(file, quality=95)
        roots[package] = (root / package, f"{len(package)}.0-1")
    return roots


@pytest.fixture
def tree(rp, tmp_path):
    rgba = np.dstack([photo_like(2, 300, 320), np.full((300, 320), 128, np.uint8)])
    images = {"opencv-doc": {OPENCV_PNG: rgba, OPENCV_JPG: photo_like(3, 256, 290)},
              "libjxl-testdata": {JXL_PNG: photo_like(4, 400, 260)}}
    roots = fake_tree(tmp_path / "x", images)
    allow = {package: {path: rp.ALLOW[package][path] for path in files} for package, files in images.items()}
    return roots, allow, images


def test_the_folder_holds_the_allow_listed_photos_as_rgb_png_with_a_manifest(rp, tree, tmp_path):
    roots, allow, images = tree
    train = rp.select_sources(roots, allow)
    val = rp.validation_sources()[:2]
    out = tmp_path / "photos"
    manifest = rp.build_folder(out, train, val)
    assert sorted(p.name for p in (out / "train").iterdir()) == [
        "libjxl-testdata__flower.png", "opencv-doc__chicky_512.png", "opencv-doc__fruits.png"]
    assert sorted(p.name for p in (out / "val").iterdir()) == sorted(
        f"{Path(n).stem}.png" for n in BUILTIN_PHOTOS[:2])
    assert not out.with_name("photos.tmp").exists()
    assert json.loads((out / "manifest.json").read_text()) == manifest
    chicky = next(e for e in manifest["train"] if e["file"] == "train/opencv-doc__chicky_512.png")
    assert chicky == {"file": "train/opencv-doc__chicky_512.png", "package": "opencv-doc", "version": "10.0-1",
                      "source": OPENCV_PNG, "description": rp.ALLOW["opencv-doc"][OPENCV_PNG], "width": 320,
                      "height": 300, "bytes": chicky["bytes"], "sha256": chicky["sha256"]}
    for entry in manifest["train"] + manifest["val"]:
        data = (out / entry["file"]).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest() and entry["bytes"] == len(data)
        with Image.open(out / entry["file"]) as img:
            assert img.format == "PNG" and img.mode == "RGB" and img.size == (entry["width"], entry["height"])
    # alpha dropped, pixels kept; the validation photos copied unchanged
    assert np.array_equal(load_rgb(out / chicky["file"]), images["opencv-doc"][OPENCV_PNG][..., :3])
    assert [e["package"] for e in manifest["val"]] == ["scikit-image"] * 2
    assert np.array_equal(load_rgb(out / "val" / "astronaut.png"), builtin_photo("astronaut.png"))
    assert manifest["totals"]["train"] == {"files": 3, "pixels": 320 * 300 + 290 * 256 + 260 * 400}
    assert 0 < manifest["leak_check"]["max"] < rp.THRESHOLD


def test_a_training_photo_cut_from_a_validation_photo_stops_the_run_and_writes_nothing(rp, tree, tmp_path):
    roots, allow, _ = tree
    Image.fromarray(builtin_photo("chelsea.png")[:, 60:400]).save(roots["opencv-doc"][0] / OPENCV_JPG)
    out = tmp_path / "photos"
    with pytest.raises(rp.LeakError, match="opencv-doc__fruits.png looks like validation photo chelsea.png"):
        rp.build_folder(out, rp.select_sources(roots, allow), rp.validation_sources()[:2])
    assert not out.exists() and not out.with_name("photos.tmp").exists()


def test_an_existing_folder_is_refused_unless_forced(rp, tree, tmp_path, capsys):
    roots, allow, _ = tree
    out = tmp_path / "photos"
    (out / "train").mkdir(parents=True)
    (out / "keep.txt").write_text("mine")
    train, val = rp.select_sources(roots, allow), rp.validation_sources()[:1]
    with pytest.raises(rp.UserError, match="already exists"):
        rp.build_folder(out, train, val)
    with pytest.raises(SystemExit) as exc:
        rp.main(["--out", str(out), "--debs", str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already exists" in err and "--force" in err
    assert (out / "keep.txt").read_text() == "mine"
    rp.build_folder(out, train, val, force=True)
    assert not (out / "keep.txt").exists() and len(list((out / "train").iterdir())) == 3
    assert not out.with_name("photos.old").exists()


def test_a_missing_allow_listed_file_or_package_is_one_line_and_exit_2(rp, tree, tmp_path, monkeypatch, capsys):
    roots, allow, _ = tree
    with pytest.raises(rp.UserError, match="package 'libjxl-testdata' is missing"):
        rp.select_sources({"opencv-doc": roots["opencv-doc"]}, allow)
    (roots["opencv-doc"][0] / OPENCV_JPG).unlink()
    with pytest.raises(rp.UserError, match=f"allow-listed file '{OPENCV_JPG}' is missing from package opencv-doc"):
        rp.select_sources(roots, allow)
    # end to end through main, with the unpacking stood in for
    debs = tmp_path / "debs"
    debs.mkdir()
    for package in rp.DEBIAN_PACKAGES:
        (debs / f"{package}_1.0-1_all.deb").write_bytes(b"")
    monkeypatch.setattr(rp, "extract_debs", lambda found, dest: {p: roots[p] for p in found})
    with pytest.raises(SystemExit) as exc:
        rp.main(["--out", str(tmp_path / "photos"), "--debs", str(debs)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert len([line for line in err if "error" in line]) == 1 and "allow-listed file" in err[-1]
    assert "Traceback" not in "\n".join(err) and not (tmp_path / "photos").exists()


def test_debs_are_found_one_per_package(rp, tmp_path):
    (tmp_path / "opencv-doc_4.6.0_all.deb").write_bytes(b"")
    with pytest.raises(rp.UserError, match="package 'libjxl-testdata' is missing: no libjxl-testdata_"):
        rp.find_debs(tmp_path)
    (tmp_path / "libjxl-testdata_0.1_all.deb").write_bytes(b"")
    assert {p: d.name for p, d in rp.find_debs(tmp_path).items()} == {
        "opencv-doc": "opencv-doc_4.6.0_all.deb", "libjxl-testdata": "libjxl-testdata_0.1_all.deb"}
    (tmp_path / "opencv-doc_4.7.0_all.deb").write_bytes(b"")
    with pytest.raises(rp.UserError, match="several opencv-doc_"):
        rp.find_debs(tmp_path)


def test_the_allow_list_is_unambiguous_and_leaves_the_validation_photos_out(rp):
    assert set(rp.ALLOW) == {*rp.DEBIAN_PACKAGES, rp.WHEEL}
    names = [f"{p}__{Path(path).stem}.png" for p, files in rp.ALLOW.items() for path in files]
    assert len(names) == len(set(names))
    assert all(not path.startswith("/") and ".." not in path for files in rp.ALLOW.values() for path in files)
    assert not {Path(p).name for p in rp.ALLOW[rp.WHEEL]} & set(BUILTIN_PHOTOS)
    # the wheel's allow-listed photos are there and big enough
    sources = rp.select_sources({rp.WHEEL: rp.wheel_root()}, {rp.WHEEL: rp.ALLOW[rp.WHEEL]})
    assert all(min(rp.load_photo(s).shape[:2]) >= rp.MIN_SIDE for s in sources)
