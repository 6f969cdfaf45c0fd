import logging

import numpy as np
import pytest
from PIL import Image

from edgeprune.data.sr import downscale, load_folder, split_folder, validation_pairs
from edgeprune.core.errors import InvalidArgumentError


def write_images(folder, count, size=(40, 30)):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(folder / f"{i:04d}.png")


def test_split_uses_subfolders_or_every_tenth_file(tmp_path):
    write_images(tmp_path / "a" / "train", 3)
    write_images(tmp_path / "a" / "valid", 2)
    train, val = split_folder(tmp_path / "a")
    assert (len(train), len(val)) == (3, 2)
    write_images(tmp_path / "b", 25)
    train, val = split_folder(tmp_path / "b")
    assert [p.name for p in val] == ["0000.png", "0010.png", "0020.png"] and len(train) == 22
    assert not set(train) & set(val)


def test_bad_folders(tmp_path, caplog):
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        split_folder(tmp_path / "none")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidArgumentError, match="has no images to train on and validate with"):
        split_folder(tmp_path / "empty")
    write_images(tmp_path / "c", 12, size=(20, 20))
    (tmp_path / "c" / "0005.png").write_bytes(b"corrupt")
    with caplog.at_level(logging.WARNING):
        with pytest.raises(InvalidArgumentError, match=r"no usable training image .*\(1 unreadable, 9 smaller than a "
                                                        r"32-pixel patch\)"):
            load_folder(tmp_path / "c", patch=32)
    assert "not a readable image" in caplog.text
    train, val = load_folder(tmp_path / "c", patch=16)
    assert len(train.images) == 9 and train.skipped["unreadable"] == 1 and len(val.images) == 2


def test_downscale_is_antialiased_bicubic_and_crops_to_the_scale():
    hr = np.zeros((9, 10, 3), np.uint8)
    hr[:, ::2] = 255  # a pattern above LR Nyquist: antialiasing must average it to grey
    lr, hr_f = downscale(hr, 2)
    assert lr.shape == (4, 5, 3) and hr_f.shape == (8, 10, 3)
    assert abs(lr[1:-1, 1:-1].mean() - 0.5) < 0.05 and lr.std() < 0.1
    dark = np.ones((4, 4, 3), np.uint8)  # uint8 is scaled by 1/255 whatever its values
    assert downscale(dark, 2)[1].max() == pytest.approx(1 / 255)
    assert downscale(np.ones((4, 4, 3), np.float32), 2)[1].max() == 1.0


def test_validation_pairs_are_whole_images_cropped_if_asked():
    images = [np.zeros((50, 41, 3), np.uint8), np.zeros((30, 30, 3), np.uint8)]
    pairs = validation_pairs(images, 2, max_side=40)
    assert [p[1].shape for p in pairs] == [(40, 40, 3), (30, 30, 3)] and pairs[0][0].shape == (20, 20, 3)
