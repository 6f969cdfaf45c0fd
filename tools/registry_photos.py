"""A DIV2K-style folder of real photographs taken only from package registries, for an EDSR baseline.

    .venv/bin/python tools/registry_photos.py --out DIR [--debs FOLDER] [--force]
    edgeprune train --model edsr --data DIR ...

Training photos come from two Debian packages, fetched with ``apt-get download opencv-doc libjxl-testdata`` (about
150 MB, nothing is installed) or read from ``--debs FOLDER`` holding ``opencv-doc_*.deb`` and
``libjxl-testdata_*.deb``, and unpacked with ``dpkg-deb -x``; plus the scikit-image wheel's colour photos that
edgeprune does not validate on. Only the files named in ALLOW below are used: natural colour photographs of at least
256x256 (no charts, chessboards, text, drawings, masks, trimaps, renders, screenshots, no second view or re-encode of
a photo already taken, no standard super-resolution benchmark image).

Validation photos are the eight scikit-image photos edgeprune holds out (``edgeprune.data.photos.BUILTIN_PHOTOS``).
Before anything is written every training photo is compared with every validation photo (LEAK_CHECK below: a grey
32x32 fingerprint, matched over crops at all positions and scales, mirrored too); a pair scoring THRESHOLD or more
stops the run.

Written, all at once (built in ``DIR.tmp``, then renamed; an existing DIR is refused unless ``--force``):

    DIR/train/<package>__<name>.png   RGB PNG (alpha dropped)
    DIR/val/<name>.png                the validation photos as RGB PNG
    DIR/manifest.json                 per file: package, version, path inside the package, size, sha256 of the PNG;
                                      the leak check's highest similarity and its threshold

Progress goes to stderr; bad input (no apt-get and no --debs, a package or an allow-listed file missing, a failed
download) is one line on stderr and exit status 2.
"""

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib.metadata import version as installed_version
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

OPENCV = "usr/share/doc/opencv-doc/examples/"
JXL = "usr/share/libjxl-testdata/"

# package -> {path inside the package: what the photo shows}. Every candidate of at least 256 px was looked at; the
# notable ones left out are named in the comments.
ALLOW = {
    "opencv-doc": {
        # Left out: renders (Blender_Suzanne*), chessboards (left/right01-14, chessboard), greyscale (basketball*,
        # box*, blox), text (imageText*, sudoku, text_*, scenetext_segmented_word*), drawings and synthetic images
        # (ml, cards, pic1-6, detect_blob, gradient, fuzzy/input, starry_night), a screenshot (smarties: taken with
        # gnome-screenshot, background clipped white), a deliberately blurred photo (licenseplate_motion), masks
        # and trimaps, second views of a scene taken below (aero3, aloeR, graf3, leuvenB, rubberwhale2, right.jpg),
        # ela_modified (a doctored ela_original), dim noisy book covers (left.jpg), heavily compressed sign photos
        # (scenetext01-05, JPEG quality about 30-65), reg/home.png (its top row is corrupt), and the standard SR
        # test images baboon.jpg (Set14) and dnn_superres/butterfly.png (Set5).
        OPENCV + "alphamat/input_images/plant.jpg": "potted plant on a desk (alpha-matting input)",
        OPENCV + "data/aero1.jpg": "aerial view of a town (stitching sample)",
        OPENCV + "data/aloeL.jpg": "aloe plant on patterned cloth (Middlebury stereo, left view)",
        OPENCV + "data/apple.jpg": "apple (scanned photo, blending sample)",
        OPENCV + "data/board.jpg": "circuit board close-up",
        OPENCV + "data/building.jpg": "office building with trees and lawn",
        OPENCV + "data/butterfly.jpg": "swallowtail butterfly on a leaf",
        OPENCV + "data/chicky_512.png": "dog portrait (RGBA, alpha dropped)",
        OPENCV + "data/ela_original.jpg": "notebook with an elastic band on a table",
        OPENCV + "data/fruits.jpg": "cut citrus fruit and kiwi",
        OPENCV + "data/graf1.png": "graffiti wall (Oxford affine set, first view)",
        OPENCV + "data/home.jpg": "palace tower against a blue sky with birds",
        OPENCV + "data/leuvenA.jpg": "Leuven street of brick houses (Oxford affine set, first exposure)",
        OPENCV + "data/messi5.jpg": "footballer kicking a ball on a pitch",
        OPENCV + "data/orange.jpg": "orange (scanned photo, blending sample)",
        OPENCV + "data/rubberwhale1.png": "toys and fabric (Middlebury optical flow, first frame)",
        OPENCV + "data/squirrel_cls.jpg": "squirrel on a branch",
        OPENCV + "data/stuff.jpg": "pen, lighter, ball and caps on a table",
        OPENCV + "text/scenetext06.jpg": "street with a pub facade and a red car",
    },
    "libjxl-testdata": {
        # Left out: flower.png's re-encodes, crops and conversions (flower.png.*.jpg, flower.pnm/.pgm, flower_alpha,
        # flower_cropped, flower_small.*), the wesaturate grey and alpha copies and 64 px crops, raw.pixls (64 px),
        # wide-gamut-tests (colour bars, rings, text), hdr_room.png (16-bit BT.2020 HLG: needs tone mapping to be
        # an sRGB photo), pngsuite and the other small or synthetic test images.
        JXL + "jxl/flower/flower.png": "pink daisies, 2268x1512 lossless",
        JXL + "external/wesaturate/500px/cvo9xd_keong_macan_srgb8.png": "rocky shore, lake and hills (CC0)",
        JXL + "external/wesaturate/500px/tmshre_riaphotographs_srgb8.png": "field of pink tulips (CC0)",
        JXL + "external/wesaturate/500px/u76c0g_bliznaca_srgb8.png": "cherry blossom branch (CC0)",
    },
    "scikit-image": {
        # The wheel's other colour images are synthetic (color.png, phantom.png, chessboard_RGB.png, logo.png,
        # horse.png); the rest are greyscale.
        "skimage/data/retina.jpg": "colour fundus photograph of a retina",
    },
}
DEBIAN_PACKAGES = ("opencv-doc", "libjxl-testdata")
WHEEL = "scikit-image"
MIN_SIDE = 256

# LEAK_CHECK: each image is turned grey (box-downscaled to a shorter side of about WORK_SIDE, but so that its smallest
# searched window still spans 64 pixels); its centre square, and that square mirrored, is looked for among square
# windows of the other image at every position (step 1/16 of the window) and scale (steps of 10%, down to
# WINDOW_FRACTION of the shorter side and no smaller than WINDOW_PIXELS original pixels). The best COARSE_CANDIDATES
# windows by an 8x8 fingerprint are refined (position and scale, to a pixel) by the normalised correlation of 32x32
# fingerprints. Both directions are searched: a training image cut from a validation photo, and a validation photo cut
# from a training image. Correlation makes it blind to brightness and contrast changes. Measured: resized (x0.37 to
# x1.7), JPEG re-encoded (quality 50-80) and cropped (35-90% of each side, at random places, rescaled x0.6-1.2) copies
# of the eight validation photos score 0.978 or more (in two random draws); different photos at most 0.833 (this
# allow-list against the validation photos: the run prints its maximum) and 0.836 (the motorcycle stereo pair, two
# views of one scene). THRESHOLD sits between the two.
THRESHOLD = 0.91
FINE, COARSE = 32, 8
COARSE_CANDIDATES = 10
WINDOW_FRACTION = 0.2
WINDOW_PIXELS = 128
SCALE_STEP = 0.9
WORK_SIDE = 256  # the leak check's images are box-downscaled to about this shorter side


class UserError(Exception):
    """Bad input: reported as one line on stderr, exit status 2."""


class LeakError(UserError):
    """A training image looks like a crop, resize or re-encode of a validation photo."""


@dataclass(frozen=True)
class Source:
    package: str
    version: str
    root: Path  # the extracted package (or site-packages for the wheel)
    path: str  # relative to root
    description: str = ""

    @property
    def file(self) -> Path:
        return self.root / self.path


def note(message: str) -> None:
    print(f"registry_photos: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- packages

def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise UserError(f"'{name}' is not on PATH (this needs a Debian-like system)")
    return path


def _run(cmd: list, cwd=None) -> str:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except OSError as exc:
        raise UserError(f"cannot run {cmd[0]}: {exc}") from exc
    if proc.returncode != 0:
        lines = [line for line in (proc.stderr or proc.stdout).splitlines() if line.strip()]
        raise UserError(f"'{' '.join(map(str, cmd))}' failed ({proc.returncode}): "
                        f"{lines[-1].strip() if lines else 'no message'}")
    return proc.stdout


def download_debs(dest: Path, packages=DEBIAN_PACKAGES) -> Path:
    if shutil.which("apt-get") is None:
        raise UserError("apt-get is not available: give --debs FOLDER holding "
                        + " and ".join(f"{p}_*.deb" for p in packages))
    note(f"apt-get download {' '.join(packages)} into {dest}")
    _run([_tool("apt-get"), "download", *packages], cwd=dest)
    return dest


def find_debs(folder: Path, packages=DEBIAN_PACKAGES) -> dict:
    """package -> its .deb in ``folder`` (exactly one each)."""
    if not folder.is_dir():
        raise UserError(f"--debs '{folder}' is not a folder")
    debs = {}
    for package in packages:
        found = sorted(folder.glob(f"{package}_*.deb"))
        if not found:
            raise UserError(f"package '{package}' is missing: no {package}_*.deb in '{folder}'")
        if len(found) > 1:
            raise UserError(f"several {package}_*.deb in '{folder}' ({', '.join(f.name for f in found)}): keep one")
        debs[package] = found[0]
    return debs


def deb_fields(deb: Path) -> dict:
    out = _run([_tool("dpkg-deb"), "-f", str(deb), "Package", "Version"])
    fields = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
    if "Version" not in fields:
        raise UserError(f"'{deb}' has no Version field: not a Debian package?")
    return fields


def extract_debs(debs: dict, dest: Path) -> dict:
    """package -> (extracted root, version)."""
    roots = {}
    for package, deb in debs.items():
        fields = deb_fields(deb)
        if fields.get("Package", package) != package:
            raise UserError(f"'{deb}' holds package '{fields['Package']}', not '{package}'")
        root = dest / package
        root.mkdir(parents=True)
        note(f"unpacking {deb.name} ({fields['Version']})")
        _run([_tool("dpkg-deb"), "-x", str(deb), str(root)])
        roots[package] = (root, fields["Version"])
    return roots


def wheel_root() -> tuple:
    """(site-packages holding skimage/, scikit-image's version)."""
    from edgeprune.data.photos import builtin_photo_paths

    return builtin_photo_paths()[0].parent.parent.parent, installed_version(WHEEL)


# ---------------------------------------------------------------- selection and images

def output_name(source: Source) -> str:
    return f"{source.package}__{Path(source.path).stem}.png"


def select_sources(roots: dict, allow: dict = ALLOW) -> list:
    """The allow-listed files of each package in ``roots`` (package -> (root, version)); every one must exist."""
    sources = []
    for package, files in allow.items():
        if package not in roots:
            raise UserError(f"package '{package}' is missing (nothing extracted for it)")
        root, version = roots[package]
        for path, description in files.items():
            source = Source(package, version, Path(root), path, description)
            if not source.file.is_file():
                raise UserError(f"allow-listed file '{path}' is missing from package {package} {version}")
            sources.append(source)
    names = [output_name(s) for s in sources]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UserError(f"allow-list gives several files the same output name: {', '.join(duplicates)}")
    return sources


def validation_sources() -> list:
    from edgeprune.data.photos import BUILTIN_PHOTOS, builtin_photo_paths

    root, version = wheel_root()
    paths = builtin_photo_paths()
    if len(paths) != len(BUILTIN_PHOTOS):
        raise UserError(f"scikit-image {version} lacks some of the validation photos {', '.join(BUILTIN_PHOTOS)}")
    return [Source(WHEEL, version, root, p.relative_to(root).as_posix(), "validation photo") for p in paths]


def load_photo(source: Source, min_side: int = MIN_SIDE) -> np.ndarray:
    """uint8 HxWx3 (EXIF orientation applied, alpha dropped)."""
    try:
        with Image.open(source.file) as img:
            rgb = np.asarray(ImageOps.exif_transpose(img).convert("RGB"))
    except (OSError, ValueError, SyntaxError) as exc:
        raise UserError(f"'{source.path}' of package {source.package} is not a readable image ({exc})") from exc
    if min(rgb.shape[:2]) < min_side:
        raise UserError(f"'{source.path}' of package {source.package} is {rgb.shape[1]}x{rgb.shape[0]}, smaller "
                        f"than {min_side}x{min_side}")
    return rgb


# ---------------------------------------------------------------- leak check

def _integral(grey: np.ndarray) -> np.ndarray:
    ii = np.zeros((grey.shape[0] + 1, grey.shape[1] + 1), np.float64)
    ii[1:, 1:] = grey.cumsum(0).cumsum(1)
    return ii


def _prints(ii: np.ndarray, tops, lefts, sides, n: int) -> np.ndarray:
    """n x n box-mean fingerprints of square windows, zero-mean and unit-norm (zero for flat windows)."""
    k = np.arange(n + 1) / n
    ys = np.round(tops[:, None] + sides[:, None] * k).astype(int)
    xs = np.round(lefts[:, None] + sides[:, None] * k).astype(int)
    s = ii[ys[:, :, None], xs[:, None, :]]
    box = s[:, 1:, 1:] - s[:, :-1, 1:] - s[:, 1:, :-1] + s[:, :-1, :-1]
    area = np.maximum(np.diff(ys, axis=1)[:, :, None] * np.diff(xs, axis=1)[:, None, :], 1)
    v = (box / area).reshape(len(tops), -1)
    v -= v.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(v, axis=1, keepdims=True)
    flat = norm[:, 0] < 0.5 * np.sqrt(v.shape[1])  # standard deviation under half a grey level
    v /= np.maximum(norm, 1e-9)
    v[flat] = 0.0
    return v


def _positions(length: float, side: float, step: float) -> np.ndarray:
    return np.unique(np.r_[np.arange(0.0, length - side + 1e-9, step), length - side, (length - side) / 2])


class Fingerprint:
    """One image prepared for the leak check: its centre square's fingerprints (plain and mirrored) and those of
    its windows."""

    def __init__(self, rgb: np.ndarray):
        h, w = rgb.shape[:2]
        smallest = min(1.0, max(WINDOW_FRACTION, WINDOW_PIXELS / min(h, w)))
        factor = min(1.0, max(WORK_SIDE / min(h, w), 2 * FINE / (smallest * min(h, w))))
        grey = Image.fromarray(rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))
        if factor < 1.0:
            grey = grey.resize((max(1, round(w * factor)), max(1, round(h * factor))), Image.Resampling.BOX)
        self.ii = _integral(np.asarray(grey, np.float64))
        self.height, self.width = self.ii.shape[0] - 1, self.ii.shape[1] - 1
        self.tops, self.lefts, self.sides = self._windows(smallest)
        self.coarse = _prints(self.ii, self.tops, self.lefts, self.sides, COARSE)
        side = float(min(self.height, self.width))
        centre = (np.array([(self.height - side) / 2]), np.array([(self.width - side) / 2]), np.array([side]))
        self.query = {n: self._mirrored(_prints(self.ii, *centre, n)[0], n) for n in (COARSE, FINE)}

    @staticmethod
    def _mirrored(v: np.ndarray, n: int) -> np.ndarray:
        return np.stack([v, v.reshape(n, n)[:, ::-1].ravel()])

    def _windows(self, smallest: float):
        tops, lefts, sides = [], [], []
        scale = 1.0
        while scale >= smallest - 1e-9:
            side = scale * min(self.height, self.width)
            step = max(1.0, side / 16)
            t, l = np.meshgrid(_positions(self.height, side, step), _positions(self.width, side, step),
                               indexing="ij")
            tops.append(t.ravel()), lefts.append(l.ravel()), sides.append(np.full(t.size, side))
            scale *= SCALE_STEP
        return np.concatenate(tops), np.concatenate(lefts), np.concatenate(sides)

    def refine(self, query: np.ndarray, top: float, left: float, side: float) -> float:
        """Hill-climbs a window's position and scale to the best 32x32 correlation with ``query``."""
        best = float(_prints(self.ii, np.array([top]), np.array([left]), np.array([side]), FINE)[0] @ query)
        step, scale_step = side / 16, 0.05
        d = np.array([-1.0, 0.0, 1.0])
        dt, dl, ds = (a.ravel() for a in np.meshgrid(d, d, d, indexing="ij"))
        while step >= 0.5:
            sides = np.clip(side * (1 + scale_step * ds), 2 * FINE, min(self.height, self.width))
            tops = np.clip(top + step * dt, 0, self.height - sides)
            lefts = np.clip(left + step * dl, 0, self.width - sides)
            corr = _prints(self.ii, tops, lefts, sides, FINE) @ query
            i = int(corr.argmax())
            if corr[i] > best + 1e-6:
                best, top, left, side = float(corr[i]), tops[i], lefts[i], sides[i]
            else:
                step, scale_step = step / 2, scale_step / 2
        return best

    def best_match(self, other: "Fingerprint") -> float:
        """The highest correlation of ``other``'s centre square (or its mirror image) with a window of this one."""
        best = 0.0
        for mirror in (0, 1):
            coarse = self.coarse @ other.query[COARSE][mirror]
            for i in np.argsort(coarse)[-COARSE_CANDIDATES:]:
                best = max(best, self.refine(other.query[FINE][mirror], self.tops[i], self.lefts[i], self.sides[i]))
        return best


def similarity(a: Fingerprint, b: Fingerprint) -> float:
    """1.0 for the same picture; a crop, resize or re-encode of one by the other scores close to it."""
    return max(a.best_match(b), b.best_match(a))


def leak_check(train: dict, val: dict, threshold: float = THRESHOLD) -> dict:
    """``train`` and ``val``: name -> uint8 image. Returns the highest similarity and its pair; raises LeakError
    when it reaches ``threshold``."""
    val_prints = {name: Fingerprint(image) for name, image in val.items()}
    best = {"max": 0.0, "train": None, "val": None}
    for name, image in train.items():
        fp = Fingerprint(image)
        for val_name, val_fp in val_prints.items():
            s = similarity(fp, val_fp)
            if s > best["max"]:
                best = {"max": s, "train": name, "val": val_name}
    if best["max"] >= threshold:
        raise LeakError(f"training image {best['train']} looks like validation photo {best['val']} (similarity "
                        f"{best['max']:.3f} >= {threshold}): remove it from the allow-list")
    return {**best, "max": round(best["max"], 4), "threshold": threshold}


# ---------------------------------------------------------------- output

def write_png(image: np.ndarray, path: Path) -> dict:
    Image.fromarray(image).save(path, format="PNG")
    data = path.read_bytes()
    return {"width": int(image.shape[1]), "height": int(image.shape[0]), "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest()}


def _entry(file: str, source: Source, written: dict) -> dict:
    return {"file": file, "package": source.package, "version": source.version, "source": source.path,
            "description": source.description, **written}


def check_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"'{out}' exists and is not a folder")
    if out.exists() and not force:
        raise UserError(f"'{out}' already exists: give another --out, or --force to replace it")


def build_folder(out: Path, train: list, val: list, force: bool = False, threshold: float = THRESHOLD) -> dict:
    """Checks and writes ``out`` (train/, val/, manifest.json) from ``train`` and ``val`` Sources, atomically.
    Returns the manifest."""
    out = Path(out)
    check_out(out, force)
    train_images = {output_name(s): load_photo(s) for s in train}
    val_images = {f"{Path(s.path).stem}.png": load_photo(s, 0) for s in val}
    note(f"leak check: {len(train_images)} training images against {len(val_images)} validation photos")
    check = leak_check(train_images, val_images, threshold)
    note(f"leak check passed: highest similarity {check['max']:.3f} ({check['train']} vs {check['val']}), "
         f"threshold {threshold} (resized, cropped or re-encoded copies score about 0.98 or more)")
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        (tmp / "train").mkdir(parents=True)
        (tmp / "val").mkdir()
        manifest = {"created_by": "tools/registry_photos.py", "leak_check": check, "train": [], "val": []}
        for source in train:
            name = output_name(source)
            written = write_png(train_images[name], tmp / "train" / name)
            manifest["train"].append(_entry(f"train/{name}", source, written))
        for source, name in zip(val, val_images):
            written = write_png(val_images[name], tmp / "val" / name)
            manifest["val"].append(_entry(f"val/{name}", source, written))
        manifest["totals"] = {part: {"files": len(manifest[part]),
                                     "pixels": sum(e["width"] * e["height"] for e in manifest[part])}
                              for part in ("train", "val")}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        _replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _replace(tmp: Path, out: Path) -> None:
    if not out.exists():
        tmp.rename(out)
        return
    old = out.with_name(out.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old)


# ---------------------------------------------------------------- command line

def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="folder to create (train/, val/, manifest.json)")
    parser.add_argument("--debs", type=Path, default=None, metavar="FOLDER",
                        help="folder with opencv-doc_*.deb and libjxl-testdata_*.deb already downloaded "
                             "(default: apt-get download them into a temporary folder)")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    return parser.parse_args(argv)


def make_folder(args) -> dict:
    check_out(args.out, args.force)
    with tempfile.TemporaryDirectory(prefix="registry_photos.") as work:
        work = Path(work)
        if args.debs is not None:
            debs = find_debs(args.debs)
        else:
            (work / "debs").mkdir()
            debs = find_debs(download_debs(work / "debs"))
        roots = {**extract_debs(debs, work / "x"), WHEEL: wheel_root()}
        train = select_sources(roots)
        note(f"{len(train)} allow-listed photos found: "
             + ", ".join(f"{p} {len(f)}" for p, f in ALLOW.items()))
        manifest = build_folder(args.out, train, validation_sources(), args.force)
    totals = manifest["totals"]
    note(f"wrote {args.out}: {totals['train']['files']} training photos ({totals['train']['pixels'] / 1e6:.1f} "
         f"Mpx), {totals['val']['files']} validation photos ({totals['val']['pixels'] / 1e6:.1f} Mpx)")
    return manifest


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        make_folder(args)
    except UserError as exc:
        print(f"registry_photos: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
