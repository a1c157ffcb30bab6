"""Small JPEG previews of images (the report's thumbnails), made in one place for both their makers.

The HTML report shows every image at about 256 px (probe variants at 160 px beside their parent). A
10,000-question run with the corrupt probe stores ~12,000 corrupted images; decoding each again to
draw its thumbnail was most of the report's first write (bench/report.py: ~60 of 85 CPU-s). So the
probe image store (medprobe.probes._store) writes a preview when it stores an image, from the pixels it
already holds, and the report copies it (medprobe.views.thumbs). Both call `jpeg` below, so a preview
looks as the report's own thumbnail would.
"""

from __future__ import annotations

import io
from pathlib import Path

SIDE = 256
SMALL = 160  # probe variants are shown smaller beside their parent
QUALITY = 72
#: previews of a probe image store: probe_images/previews/<sha256>-<side>.jpg
FOLDER = "previews"


def jpeg(img, side: int) -> bytes:
    """`img` (a PIL image) fitted in side x side, grey when its channels are equal, as JPEG bytes."""
    from PIL import Image

    img = img.copy() if img.mode in ("RGB", "L") else img.convert("RGB")
    img.thumbnail((side, side), Image.Resampling.BILINEAR, reducing_gap=2.0)
    if img.mode == "RGB" and _grey(img):
        img = img.convert("L")
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=QUALITY)
    return buf.getvalue()


def path(folder: str | Path, digest: str, side: int) -> Path:
    """Where a probe image store keeps the preview of its image `digest` at `side`."""
    return Path(folder) / FOLDER / f"{digest}-{side}.jpg"


def _grey(img) -> bool:
    r, g, b = img.split()
    return r.tobytes() == g.tobytes() == b.tobytes()
