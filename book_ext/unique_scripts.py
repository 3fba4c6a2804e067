"""Sphinx extension: include each page script once.

Inline scripts registered by extensions after the builder starts (sphinx-thebe's and
sphinx-togglebutton's configuration snippets) end up twice on every page: Sphinx 7.4 stores
them once with the file name ``None`` and once with ``''``, and its de-duplication treats the
two as different. The repeated ``const THEBE_JS_URL`` declaration is then a JavaScript error.
This removes such repeats from every page, keeping the first of each.
"""

from sphinx.application import Sphinx


def _key(script: object) -> tuple[str, tuple]:
    attributes = tuple(sorted((k, str(v)) for k, v in getattr(script, "attributes", {}).items()))
    return str(getattr(script, "filename", script) or ""), attributes


def _drop_repeated_scripts(
    app: Sphinx, pagename: str, templatename: str, context: dict, doctree: object
) -> None:
    seen = set()
    unique = []
    for script in context.get("script_files", []):
        if _key(script) not in seen:
            seen.add(_key(script))
            unique.append(script)
    context["script_files"] = unique


def setup(app: Sphinx) -> dict[str, object]:
    """Register the page hook with Sphinx."""
    app.connect("html-page-context", _drop_repeated_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
