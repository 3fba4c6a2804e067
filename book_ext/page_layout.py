"""Sphinx extension: the pages' layout on phones, tablets and wide screens (a style sheet and a few lines).

``_static/page_layout.css`` and ``_static/page_layout.js``:

* one search box on wide screens: from 960 px on, the theme's header bar holds nothing but a
  second search box (the sidebar has the first), so it is not shown;
* no page scrolls sideways on a phone: inline code breaks inside a long name when it does not
  fit on a line of its own;
* a display equation wider than the text column scrolls, and shows it: a shadow on each side
  that has more to see (set by the script after MathJax has typeset, and on every scroll and
  resize) and a thin scroll bar.
"""

from pathlib import Path

from sphinx.application import Sphinx

STATIC = Path(__file__).resolve().parent / "static"


def _add_static_path(app: Sphinx, config: object) -> None:
    if str(STATIC) not in config.html_static_path:
        config.html_static_path.append(str(STATIC))


def setup(app: Sphinx) -> dict[str, object]:
    """Register the style sheet and the script with Sphinx."""
    app.connect("config-inited", _add_static_path)
    app.add_css_file("page_layout.css")
    app.add_js_file("page_layout.js", defer="defer")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
