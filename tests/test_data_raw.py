"""Raw reading with rawpy on a real Canon CR2 (RGGB, 12-bit) fetched from Debian by tools/fetch_test_raw.sh."""

import os
from pathlib import Path

import numpy as np
import pytest

from edgeprune.data.raw import RawImage, pack, read_raw, render_long, sid_input, sid_pairs
from edgeprune.core.errors import InvalidArgumentError

CR2 = Path(os.environ.get("EDGEPRUNE_RAW_CACHE", Path.home() / ".cache" / "edgeprune" / "raw")) / "IMG_5952.CR2"


@pytest.fixture(scope="module")
def cr2():
    if not CR2.is_file():
        if os.environ.get("CI"):
            pytest.fail("CI must fetch the test raw file (.ci/run runs tools/fetch_test_raw.sh)")
        pytest.skip("run tools/fetch_test_raw.sh to fetch the real raw test file")
    return CR2


def test_real_cr2_is_normalised_and_packed_rggb(cr2):
    raw = read_raw(cr2)
    assert raw.channel_at == ("R", "G", "G", "B")
    assert raw.mosaic.shape == (2348, 3522) and raw.mosaic.dtype == np.float32
    assert raw.mosaic.min() == 0.0 and 0.1 < raw.mosaic.max() <= 1.0  # black level 128 removed, white 4095
    packed = pack(raw)
    assert packed.shape == (1174, 1761, 4)
    np.testing.assert_array_equal(packed[..., 0], raw.mosaic[0::2, 0::2])
    np.testing.assert_array_equal(packed[..., 3], raw.mosaic[1::2, 1::2])
    x = sid_input(raw, 1000)  # ratio capped at 300
    np.testing.assert_allclose(x, np.minimum(packed * 300, 1.0))
    rgb = render_long(cr2)
    assert rgb.shape[2] == 3 and rgb.dtype == np.float32 and 0 <= rgb.min() and rgb.max() <= 1


def test_pack_follows_the_cfa_phase():
    mosaic = np.array([[1, 2], [3, 4]], np.float32).repeat(1, 0)
    bggr = RawImage(np.tile(mosaic, (2, 2)), ("B", "G", "G", "R"))
    np.testing.assert_array_equal(pack(bggr)[0, 0], [4, 3, 2, 1])  # R, G on R's row, G on B's row, B
    grbg = RawImage(np.tile(mosaic, (2, 2)), ("G", "R", "B", "G"))
    np.testing.assert_array_equal(pack(grbg)[0, 0], [2, 1, 4, 3])


def test_sid_layout_pairs_by_scene_with_ratios(cr2, tmp_path):
    for folder, name in (("short", "00001_00_0.1s.ARW"), ("long", "00001_00_10s.ARW"),
                         ("short", "20001_00_0.04s.ARW"), ("long", "20001_00_10s.ARW"),
                         ("short", "00002_00_0.1s.ARW")):
        (tmp_path / folder).mkdir(exist_ok=True)
        os.symlink(cr2, tmp_path / folder / name)
    train, val = sid_pairs(tmp_path)
    assert [(p.scene, p.ratio) for p in train] == [("00001", 100.0)]
    assert [(p.scene, p.ratio) for p in val] == [("20001", 250.0)]


def test_a_real_raw_runs_through_sid(cr2):
    from keras_models import build_sid

    x = sid_input(read_raw(cr2), 100)[:64, :96][None]
    assert build_sid(features=(2, 3, 4, 5, 6))(x).shape == (1, 128, 192, 3)


def test_bad_raw_inputs(tmp_path):
    fake = tmp_path / "x.ARW"
    fake.write_bytes(b"not raw")
    with pytest.raises(InvalidArgumentError, match="is not a raw file LibRaw can read"):
        read_raw(fake)
    with pytest.raises(InvalidArgumentError, match="is not in the SID Sony layout"):
        sid_pairs(tmp_path)
    (tmp_path / "short").mkdir()
    (tmp_path / "long").mkdir()
    with pytest.raises(InvalidArgumentError, match="needs training scenes .* found 0 and 0 pairs"):
        sid_pairs(tmp_path)


def test_sid_folder_pairs_are_aligned_and_trainable(cr2, tmp_path):
    from edgeprune.data.pairs import sid_folder
    from edgeprune.commands.train import train_command

    for folder, name in (("short", "00001_00_0.1s.ARW"), ("long", "00001_00_10s.ARW"),
                         ("short", "20001_00_0.1s.ARW"), ("long", "20001_00_10s.ARW")):
        (tmp_path / "sid" / folder).mkdir(parents=True, exist_ok=True)
        os.symlink(cr2, tmp_path / "sid" / folder / name)
    train, val = sid_folder(tmp_path / "sid", train_images=1, val_side=128)
    x, y = train.inputs[0], train.targets[0]
    assert x.shape[0] % 16 == 0 and y.shape[:2] == (2 * x.shape[0], 2 * x.shape[1]) and x.shape[2] == 4
    assert val.inputs[0].shape == (64, 64, 4) and val.targets[0].shape == (128, 128, 3)
    report = train_command("sid", tmp_path / "sid.keras", data=tmp_path / "sid", steps=2, batch_size=1, patch=32,
                           verbose=0)
    assert report["data"]["train"]["kind"] == "SID Sony layout" and report["validation"]["images"] == 1


def test_a_file_libraw_cannot_render_is_a_one_line_error(tmp_path):
    fake = tmp_path / "00001_00_10s.ARW"
    fake.write_bytes(b"not a raw file" * 100)
    with pytest.raises(InvalidArgumentError, match="is not a raw file LibRaw can render"):
        render_long(fake)
    with pytest.raises(InvalidArgumentError, match="is not a raw file LibRaw can render"):
        render_long(tmp_path / "missing.ARW")
