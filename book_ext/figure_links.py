"""Sphinx extension: figures that are sharp on 2× screens, open enlarged in the page, and link to their PNG.

Figures are drawn at most ``FIGURE_WIDTH`` wide for the text column. For each image of a page:

* a notebook figure saved at twice its display size (``plotting.use_course_style`` makes the
  kernel save figures that way, with the display size in the output's metadata) is shown from
  two files made at build time: the display size (``<name>.1x.png``, what other screens load)
  and the 2× image (``<name>.2x.png``, in the ``srcset``), both as 256-colour PNGs
  (``small_png.py``); other
  images are shown as they are;
* the image is wrapped in a link to its full-size PNG (the 2× one when there is one), as
  Sphinx does for scaled images; the live figures (``live_figures.py``) link their frames
  the same way;
* ``_static/figure_zoom.js`` opens a figure, when clicked or tapped, in an overlay over the
  page, where it can be zoomed (buttons, pinch, Ctrl + wheel, double click) and panned; Esc, a
  click outside the image or the close button closes it, and it links to the full-size PNG.
"""

from __future__ import annotations

import hashlib
import html
import posixpath
import re
import shutil
from pathlib import Path

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.osutil import relative_uri

if __package__:  # imported as book_ext.figure_links (the tests)
    from .small_png import COMPRESS_LEVEL, encode_png
else:  # imported by Sphinx, which puts book_ext/ itself on sys.path
    from small_png import COMPRESS_LEVEL, encode_png

STATIC = Path(__file__).resolve().parent / "static"
#: How the 1× and 2× files are made from a 2× notebook image: change it to make them again.
RETINA_FORMAT = (
    f"1x = 2x2 mean; small_png.encode_png: octree with exact background, zlib-ng level {COMPRESS_LEVEL}"
)


def _display_size(image: nodes.image) -> tuple[int, int] | None:
    """The image's display size in CSS pixels from its ``width``/``height`` (plain numbers or px)."""
    sizes = []
    for key in ("width", "height"):
        match = re.fullmatch(r"(\d+)(px)?", str(image.get(key, "")).strip())
        if match is None:
            return None
        sizes.append(int(match.group(1)))
    return sizes[0], sizes[1]


def retina_files(source: Path, size: tuple[int, int], cache: Path) -> tuple[Path, Path] | None:
    """The 1× and 2× files of ``source`` if it is a 2× image of display ``size``, else None.

    They are made once and kept in ``cache`` (named by a hash of the source and the format).
    """
    from PIL import Image

    with Image.open(source) as opened:
        width, height = opened.size
        if abs(width - 2 * size[0]) > 1 or abs(height - 2 * size[1]) > 1:
            return None
        key = hashlib.sha256(source.read_bytes() + RETINA_FORMAT.encode()).hexdigest()[:16]
        small, large = cache / f"{source.stem}-{key}.1x.png", cache / f"{source.stem}-{key}.2x.png"
        if not (small.exists() and large.exists()):
            cache.mkdir(parents=True, exist_ok=True)
            rgb = opened.convert("RGB")
            for target, image in ((large, rgb), (small, rgb.resize(size, Image.Resampling.BOX))):
                target.write_bytes(encode_png(image))
    return small, large


def _image_html(image: nodes.image, src: str, large: str, size: tuple[int, int]) -> str:
    alt = image.get("alt", image["uri"])
    classes = [*image.get("classes", []), *([f"align-{image['align']}"] if "align" in image else [])]
    class_attribute = f' class="{" ".join(classes)}"' if classes else ""
    return (
        f'<a class="reference internal image-reference figure-full-size" href="{large}">'
        f'<img src="{src}" srcset="{large} 2x" alt="{html.escape(alt)}" width="{size[0]}" '
        f'height="{size[1]}"{class_attribute}></a>'
    )


def _link_images(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    if app.builder.format != "html":
        return
    images_folder = relative_uri(app.builder.get_target_uri(docname), app.builder.imagedir)
    for image in list(doctree.findall(nodes.image)):
        if isinstance(image.parent, nodes.reference):
            continue
        uri = image["uri"]
        if "://" in uri or uri.startswith("data:"):
            continue
        source, size = Path(app.srcdir) / uri, _display_size(image)
        pair = None
        if size is not None and source.suffix == ".png" and source.is_file():
            pair = retina_files(source, size, Path(app.srcdir) / "_build" / ".retina_images")
        if pair is not None:
            target = Path(app.outdir) / app.builder.imagedir
            target.mkdir(parents=True, exist_ok=True)
            for path in pair:
                if not (target / path.name).exists():
                    shutil.copyfile(path, target / path.name)
            src, large = (posixpath.join(images_folder, path.name) for path in pair)
            image.replace_self(nodes.raw("", _image_html(image, src, large, size), format="html"))
            continue
        stored = app.env.images.get(uri)
        target = posixpath.join(images_folder, stored[1]) if stored else uri
        link = nodes.reference("", "", internal=True, refuri=target, classes=["figure-full-size"])
        image.replace_self(link)
        link.append(image)


def drop_unreferenced_images(site: Path) -> list[str]:
    """Delete the files of ``site/_images`` that no page of the site refers to; return their names.

    An incremental build writes the images of the pages it rebuilds and never removes the ones
    they no longer use (every re-execution of a chapter gives its figures new names), so without
    this a site that is rebuilt in place keeps growing with images nobody can reach.
    """
    folder = site / "_images"
    if not folder.is_dir():
        return []
    referenced = set()
    for page in site.rglob("*.html"):
        referenced.update(re.findall(r"_images/([^\"'\s?#)]+)", page.read_text(encoding="utf-8")))
    dropped = sorted(path.name for path in folder.iterdir() if path.is_file() and path.name not in referenced)
    for name in dropped:
        (folder / name).unlink()
    return dropped


def _drop_unreferenced_images(app: Sphinx, exception: Exception | None) -> None:
    if exception is None and app.builder.format == "html":
        drop_unreferenced_images(Path(app.outdir))


def _add_static_path(app: Sphinx, config: object) -> None:
    if str(STATIC) not in config.html_static_path:
        config.html_static_path.append(str(STATIC))


def setup(app: Sphinx) -> dict[str, object]:
    """Register the hook, the overlay's script and its style sheet with Sphinx."""
    app.connect("config-inited", _add_static_path)
    app.connect("doctree-resolved", _link_images)
    app.connect("build-finished", _drop_unreferenced_images)
    app.add_js_file("figure_zoom.js", defer="defer")
    app.add_css_file("figure_zoom.css")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
