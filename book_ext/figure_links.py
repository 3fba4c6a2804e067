"""Sphinx extension: every figure on the site links to its own PNG, at full resolution.

Figures are drawn at most ``FIGURE_WIDTH`` wide for the text column, but a reader on a phone
(or one who wants a closer look) can open the image itself: each image of a page that is not
already a link is wrapped in a link to its file in ``_images/``, as Sphinx does for scaled
images. The live figures (``live_figures.py``) link to the frame currently shown.
"""

import posixpath

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.osutil import relative_uri


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
        stored = app.env.images.get(uri)
        target = posixpath.join(images_folder, stored[1]) if stored else uri
        link = nodes.reference("", "", internal=True, refuri=target, classes=["figure-full-size"])
        image.replace_self(link)
        link.append(image)


def setup(app: Sphinx) -> dict[str, object]:
    """Register the hook with Sphinx."""
    app.connect("doctree-resolved", _link_images)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
