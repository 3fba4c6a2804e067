"""Sphinx extension: serve MathJax from the site itself instead of a CDN.

MathJax 3 comes from the PyPI package ``django-static-mathjax`` (pinned in pyproject.toml and
installed by the set-up); its ``es5`` bundle is copied to ``_static/mathjax`` and Sphinx's
``mathjax_path`` points there, so formulas render for offline readers too. The pages load the
combined component ``tex-chtml.js``, which fetches what else it needs from the component
folders (TeX extensions, fonts, the menu and its accessibility and SVG options); the package's
other combined components (``UNUSED``, 16 MB of the 24 MB) are never loaded and not copied.
"""

import fnmatch
import shutil
from importlib import resources
from pathlib import Path

from sphinx.application import Sphinx

MATHJAX_ENTRY = "mathjax/tex-chtml.js"
#: Combined components (and the server-side DOM adaptor) that a page never loads.
UNUSED = (
    "tex-svg*.js", "tex-mml-*.js", "tex-chtml-full*.js", "mml-*.js", "node-main.js", "latest.js", "adaptors",
)


def _mathjax_source() -> Path:
    return Path(str(resources.files("mathjax"))) / "static" / "mathjax" / "es5"


def _use_local_mathjax(app: Sphinx, config: object) -> None:
    config.mathjax_path = MATHJAX_ENTRY


def _copy_mathjax(app: Sphinx, exception: Exception | None) -> None:
    if exception is None and app.builder.format == "html":
        target = Path(app.outdir) / "_static" / "mathjax"
        source = _mathjax_source()
        shutil.rmtree(target, ignore_errors=True)  # no file a former build copied stays behind
        shutil.copytree(source, target, ignore=_unused(source))


def _unused(source: Path) -> object:
    """``copytree``'s ``ignore``: the ``UNUSED`` entries of the bundle's top folder."""

    def ignore(folder: str, names: list[str]) -> list[str]:
        if Path(folder) != source:
            return []
        return [name for name in names if any(fnmatch.fnmatch(name, pattern) for pattern in UNUSED)]

    return ignore


def setup(app: Sphinx) -> dict[str, object]:
    """Register the two hooks with Sphinx."""
    if not (_mathjax_source() / "tex-chtml.js").exists():
        raise RuntimeError("MathJax not found: install the pinned 'django-static-mathjax' package")
    app.connect("config-inited", _use_local_mathjax)
    app.connect("build-finished", _copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
