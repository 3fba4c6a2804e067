"""The site's figure images as small 256-colour PNGs, and the 1× image made from a 2× one.

Both the live figures' frames (``live_figures.py``) and the notebooks' static figures
(``figure_links.py``) are stored as a 2× image and its 1× image, each by :func:`encode_png`.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from zlib_ng import zlib_ng

from nqm_lib.png import png_bytes

#: zlib-ng level of every PNG's pixel data. On 24 frames of six live figures, zlib-ng at level 6
#: took 40% of the time of zlib at level 7 (PIL's encoder, used before) and stored 1% fewer bytes;
#: its level 5 was faster still but 3% larger than level 6, level 8 four times slower for 6% fewer.
COMPRESS_LEVEL = 6
#: The most an image's stored colours may differ from its drawing, on average: 1 of 255 levels.
MEAN_DIFFERENCE_BOUND = 1.0


def _as_image(pixels: np.ndarray | Image.Image) -> Image.Image:
    """``pixels`` as a PIL image (an RGB array ``height × width × 3`` of ``uint8``, or already one)."""
    return pixels if isinstance(pixels, Image.Image) else Image.fromarray(pixels)


def encode_png(pixels: np.ndarray | Image.Image) -> bytes:
    """An RGB image (a PIL image, or an array ``height × width × 3`` of ``uint8``) as a 256-colour PNG.

    A plot has a few colours and their antialiasing blends, so 256 colours keep it within a
    level or so of 255 in a third of the RGB PNG's bytes. The palette is an octree's (4 ms for
    a 1× frame, where the palette that covers the image best took 17 ms), except that the
    background, most of the image, keeps its exact colour: an octree's entry for it is the
    mean of its bucket, a shade off white, and that shade alone was a mean error of 1.3
    levels. Should the mean difference from the drawing still reach
    :data:`MEAN_DIFFERENCE_BOUND` (a frame crowded with crossing lines), the slower median
    cut's palette is used instead. Over all 1,785 live-figure frames the octree's worst mean
    difference was 0.71 levels at 2× and 1.14 at 1×, where 2 frames fell back to median cut
    (0.40 on the worst); at least 99.4% of every frame's pixels were within 16 levels in every
    channel. (Mapping the 2× frame onto its 1× frame's palette took 3 ms instead of 16, but
    its PNG was 7–10% larger.) The rows are deflated by zlib-ng at :data:`COMPRESS_LEVEL`
    (:func:`nqm_lib.png.png_bytes`).
    """
    drawn = _as_image(pixels)
    stored = drawn.quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    palette = np.array(stored.getpalette(), dtype=np.uint8).reshape(-1, 3)
    palette[stored.getpixel((0, 0))] = drawn.getpixel((0, 0))  # the corner is background
    stored.putpalette(palette.tobytes())
    if mean_difference(stored, drawn) >= MEAN_DIFFERENCE_BOUND:
        stored = drawn.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    return png_bytes(
        np.asarray(stored),
        palette=bytes(stored.getpalette()),
        level=COMPRESS_LEVEL,
        compress=zlib_ng.compress,
    )


def mean_difference(stored: Image.Image, drawn: Image.Image) -> float:
    """Mean absolute difference, in levels of 255 over all pixels and channels, of two PIL images."""
    from PIL import ImageChops, ImageStat

    return float(np.mean(ImageStat.Stat(ImageChops.difference(stored.convert("RGB"), drawn)).mean))


def half_size(pixels: np.ndarray | Image.Image) -> np.ndarray | Image.Image:
    """The image at half its width and height: the mean of each 2 × 2 block (the 1× image).

    Given a PIL image, returns one; given an array, an array.
    """
    small = _as_image(pixels).reduce(2)
    return small if isinstance(pixels, Image.Image) else np.asarray(small)
