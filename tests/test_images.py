"""Decoding every kind of image file, and refusing the bad ones with a reason."""
from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
from PIL import Image

from tlcore import images


def encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


@pytest.mark.parametrize("mode", ["RGB", "L", "P", "RGBA", "LA", "CMYK", "I;16", "1"])
def test_every_mode_becomes_rgb_uint8(mode):
    image = Image.new("RGB", (20, 10), (200, 100, 50)).convert(mode)
    fmt = "JPEG" if mode == "CMYK" else ("TIFF" if mode == "I;16" else "PNG")
    decoded = images.load_image(encode(image, fmt))
    assert decoded.shape == (10, 20, 3) and decoded.dtype == np.uint8


def test_transparent_pixels_become_white():
    image = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    assert images.load_image(encode(image))[0, 0].tolist() == [255, 255, 255]


@pytest.mark.parametrize("fmt", ["TIFF", "PNG"])
def test_sixteen_bit_levels_map_to_eight_bit_ones(fmt):
    array = np.array([[0, 257 * 100, 60000, 65535]], dtype=np.uint16)
    decoded = images.load_image(encode(Image.fromarray(array), fmt))
    assert decoded[0, :, 0].tolist() == [0, 100, 233, 255]  # not stretched, not clipped


def test_exif_rotation_is_applied():
    image = Image.new("RGB", (30, 10), (0, 0, 0))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    decoded = images.load_image(encode(image, "JPEG", exif=exif.tobytes()))
    assert decoded.shape[:2] == (30, 10)


def test_animated_gif_gives_its_first_frame():
    frames = [Image.new("P", (8, 8), colour) for colour in (1, 2, 3)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert images.load_image(data).shape == (8, 8, 3)


def test_resize_to_square():
    image = Image.new("RGB", (50, 20), (10, 20, 30))
    assert images.load_image(encode(image), size=16).shape == (16, 16, 3)


@pytest.mark.parametrize("payload", [b"", b"this is text, renamed .jpg", b"\x89PNG\r\n\x1a\n"])
def test_unreadable_bytes_raise_image_error(payload):
    with pytest.raises(images.ImageError, match="not a readable image"):
        images.load_image(payload)


def test_truncated_jpeg_raises_image_error():
    data = encode(Image.new("RGB", (64, 64), (1, 2, 3)), "JPEG")
    with pytest.raises(images.ImageError):
        images.load_image(data[: len(data) // 2])


def png_declaring(width: int, height: int) -> bytes:
    """A small PNG whose header (with a valid checksum) declares other dimensions."""
    data = bytearray(encode(Image.new("L", (1, 1))))
    header = bytes(data[12:16]) + width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes(data[24:29])
    data[12:29] = header
    data[29:33] = zlib.crc32(header).to_bytes(4, "big")
    return bytes(data)


@pytest.mark.parametrize("side", [8_000, 100_000])
def test_decompression_bomb_is_refused_before_decoding(side):
    bomb = png_declaring(side, side)
    assert len(bomb) < 100
    with pytest.raises(images.ImageError, match="pixels") as refusal:
        images.load_image(bomb)
    assert "DOS attack" not in str(refusal.value)  # not Pillow's own sentence


@pytest.mark.parametrize("size", [(1000, 5), (5, 1000), (64, 48)])
def test_a_thumbnail_is_square_whatever_the_image(size):
    thumbnail = Image.open(io.BytesIO(images.thumbnail_png(encode(Image.new("RGB", size)), 96)))
    assert thumbnail.size == (96, 96) and thumbnail.mode == "RGBA"


def test_path_errors_name_the_file(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"nope")
    with pytest.raises(images.ImageError, match="broken.png"):
        images.load_image(path)


def test_to_uint8_rounds_and_clips():
    assert images.to_uint8(np.array([-3.0, 0.4, 0.6, 254.6, 300.0])).tolist() == [0, 0, 1, 255, 255]


def test_total_variation_by_hand():
    image = np.zeros((2, 2, 1))
    image[0, 1] = 4.0  # differences: right of (0,0): 4, below (0,1): 4, others 0
    assert images.total_variation(image) == pytest.approx(8 / 4)


def test_image_grid_shape_and_png_roundtrip(tmp_path):
    batch = np.zeros((5, 8, 8, 3), dtype=np.uint8)
    grid = images.image_grid(batch, columns=3, padding=1)
    assert grid.shape == (2 * 9 + 1, 3 * 9 + 1, 3)
    path = images.save_png(grid, tmp_path / "grid.png")
    assert np.array_equal(images.load_image(path), grid)
