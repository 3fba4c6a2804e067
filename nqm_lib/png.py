"""PNG files written directly: 8-bit RGB (a widget's redraw) or 8-bit palette indices (the site's frames).

A general encoder spends as long choosing a filter for every row as zlib spends compressing;
a plot's flat colours compress well without one, so every row is left unfiltered.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable

import numpy as np

__all__ = ["png_bytes"]


def png_bytes(
    pixels: np.ndarray,
    *,
    palette: bytes | None = None,
    level: int = 1,
    compress: Callable[[bytes, int], bytes] = zlib.compress,
) -> bytes:
    """PNG bytes of 8-bit ``pixels``: RGB, or palette indices with ``palette``.

    Parameters
    ----------
    pixels
        ``uint8``: ``height × width × 3`` RGB values, or with ``palette`` ``height × width``
        indices into it; any strides (a view of a canvas's RGBA buffer will do).
    palette
        The palette's RGB entries, 3 bytes each (at most 256): makes a palette PNG.
    level
        The deflate level passed to ``compress``, 0 to 9.
    compress
        ``compress(data, level)`` deflates the rows: ``zlib.compress`` by default (the
        widgets' redraws use level 1); the site build passes zlib-ng's, which is faster for
        the same size.

    Raises
    ------
    ValueError
        If ``pixels`` is not ``uint8`` of the shape its kind needs, ``palette`` is not 3 to 768
        bytes in whole entries, or ``level`` is not a whole number from 0 to 9.

    """
    expected = "height × width indices" if palette is not None else "height × width × 3 RGB values"
    wanted_dimensions = 2 if palette is not None else 3
    if pixels.dtype != np.uint8 or pixels.ndim != wanted_dimensions or (
        palette is None and pixels.shape[2] != 3
    ):
        raise ValueError(f"pixels of dtype {pixels.dtype} and shape {pixels.shape}: need uint8 {expected}")
    if palette is not None and (len(palette) % 3 or not 3 <= len(palette) <= 768):
        raise ValueError(f"palette of {len(palette)} bytes: need 1 to 256 RGB entries of 3 bytes")
    if level not in range(10):
        raise ValueError(f"level = {level!r}: must be a whole number from 0 to 9")
    height, width = pixels.shape[:2]
    rows = np.zeros((height, 1 + pixels[0].size), dtype=np.uint8)  # a leading 0 per row: filter "none"
    rows[:, 1:].reshape(pixels.shape)[...] = pixels
    color_type = 2 if palette is None else 3
    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)  # 8 bits, no interlace
    chunks = [(b"IHDR", header), *([(b"PLTE", palette)] if palette is not None else [])]
    chunks += [(b"IDAT", compress(rows, level)), (b"IEND", b"")]
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        for kind, data in chunks
    )
