"""Any picture of one handwritten digit, made into a 28x28 image the way MNIST's were made.

MNIST digits are light on a dark background, scaled (aspect ratio kept, anti-aliased) to fit a
20x20 box and placed in a 28x28 field with their centre of mass at the centre. A model trained on
MNIST knows digits only in that form, so a photo or a drawing is brought into it first.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
FIELD = 28
BOX = 20
# Pixels fainter than this share of the strongest stroke are left out of the digit's bounding box,
# so paper grain and JPEG noise do not stretch it.
INK_THRESHOLD = 0.2


class DigitImageError(Exception):
    """The file is not a readable image, or holds no digit; the message names the file."""


def read_grayscale(path: Path) -> np.ndarray:
    """float32 [H, W] in 0..255, upright as the camera's EXIF says; transparency is white paper."""
    try:
        with Image.open(path) as opened:
            image = ImageOps.exif_transpose(opened)
            if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
                paper = Image.new("RGBA", image.size, "white")
                image = Image.alpha_composite(paper, image.convert("RGBA"))
            return np.asarray(image.convert("L"), dtype=np.float32)
    except UnidentifiedImageError:
        raise DigitImageError(f"{path} is not an image Pillow can read (expected PNG or JPEG)") from None
    except (OSError, Image.DecompressionBombError) as error:
        raise DigitImageError(f"{path} is a damaged or unreadable image ({error})") from None


def light_on_dark_ink(gray: np.ndarray) -> np.ndarray:
    """Ink strength in 0..255 over a zero background, inverting dark-on-light pictures.

    The background is the median of the border pixels; it is subtracted and the strongest stroke
    stretched to 255, as in MNIST, so grey paper and faint pencil look like the training digits.
    """
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    background = float(np.median(border))
    if background > 127:
        gray, background = 255 - gray, 255 - background
    ink = np.clip(gray - background, 0, None)
    strongest = ink.max()
    return ink * (255 / strongest) if strongest > 0 else ink


def crop_to_digit(ink: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(ink > INK_THRESHOLD * 255)
    return ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


def fit_box(digit: np.ndarray) -> np.ndarray:
    """Scale so the longer side is BOX pixels, anti-aliased (Lanczos), aspect ratio kept."""
    height, width = digit.shape
    scale = BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = Image.fromarray(digit.astype(np.float32)).resize(size, Image.Resampling.LANCZOS)
    return np.clip(np.asarray(resized), 0, 255)


def centre_by_mass(digit: np.ndarray) -> np.ndarray:
    """Paste into a FIELD x FIELD field with the centre of mass on pixel (14, 14), as in MNIST."""
    height, width = digit.shape
    rows, cols = np.indices(digit.shape)
    mass = digit.sum()
    centre_row, centre_col = (rows * digit).sum() / mass, (cols * digit).sum() / mass
    top = int(np.clip(round(FIELD / 2 - centre_row), 0, FIELD - height))
    left = int(np.clip(round(FIELD / 2 - centre_col), 0, FIELD - width))
    field = np.zeros((FIELD, FIELD), dtype=np.float32)
    field[top : top + height, left : left + width] = digit
    return field


def mnist_digit(path: Path) -> np.ndarray:
    """uint8 [28, 28], light digit on black, ready for the same normalisation as training."""
    ink = light_on_dark_ink(read_grayscale(path))
    if not ink.any():
        raise DigitImageError(f"{path} holds no digit: the image is one flat colour")
    return centre_by_mass(fit_box(crop_to_digit(ink))).round().astype(np.uint8)
