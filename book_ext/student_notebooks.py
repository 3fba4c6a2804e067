"""Sphinx extension: the chapters as *student notebooks*, in plain Jupyter Markdown.

The chapters are MyST notebooks: their Markdown cells use roles (``{glue:text}``, ``{doc}``,
``{cite:t}``, ``{numref}`` …) and directives (``:::{exercise}``, ``:::{prf:theorem}`` …) that
only the book's build understands. Colab, JupyterLab, Notebook 7 and GitHub show them as raw
markup. At the end of every HTML build this extension writes each chapter again as a plain
notebook, ``<site>/notebooks/<chapter>.ipynb``, which ``make book`` copies to the repository's
``notebooks/`` folder (committed, because Colab opens notebooks from the repository). The launch
buttons (Colab, Binder) and the ``.ipynb`` download button of each chapter page point at it.

What each construct becomes (the text around it is kept exactly as written):

* ``{glue:text}`name:.3f``` → the glued number, formatted by MyST-NB's own function (as on the
  site); ``{glue}``/``{glue:}`` → its text, ``{glue:md}`` → its Markdown;
* cross-references and citations (``{doc}``, ``{ref}``, ``{numref}``, ``{eq}``, ``{prf:ref}``,
  ``{cite:p}``, ``{cite:t}``, MyST links such as ``[](#label)``) → the text the site shows
  ("Figure 3.2", "Theorem 3.1", "Zhang *et al.* (2019)"), linked to the site's page: each one is
  resolved by Sphinx itself (the domain's resolver and every post-transform, as for the page), so
  numbers and titles are the site's. Citations get parentheses instead of the site's square
  brackets, which Markdown would read as links;
* admonitions (``{admonition}``, ``{note}``, ``{warning}`` …), theorems and proofs (``prf:*``) and
  exercises → block quotes with a bold title carrying the site's number ("**Exercise 3.2**");
* solutions (``{solution}``; gated ``{solution-start}`` … ``{solution-end}``), dropdowns and
  admonitions of class ``dropdown`` → HTML ``<details>`` folds. A gated solution's code cells
  stay code cells (so "Run all" still runs them), folded where the front end allows it:
  ``jupyter.source_hidden``/``outputs_hidden`` (JupyterLab, Notebook 7) and ``cellView: form``
  (Colab, which shows "Show code" instead of the code);
* ``{margin}``, ``{sidebar}`` → block quotes with a bold title; ``{epigraph}`` → a block quote;
* ``$$ … $$ (label)`` and ``{math}`` with a label → ``$$ … \\tag*{(3.1)} $$`` with the site's
  number; ``(label)=`` targets, ``%`` comments and ``+++`` breaks are dropped; display math gets
  blank lines around it (amsmath environments at the top level are put in ``$$``), and math inside
  a block quote is put on one line (JupyterLab finds math before it parses Markdown, so a ``>``
  on a continuation line would end up inside the formula);
* headings get the site's section numbers ("## 3.1. The heavy-ball update").

Code cells are carried over unchanged (source, outputs, execution counts), with folding metadata
added where the site folds them too (``hide-input`` …). A header cell says what the notebook is
and links to its page on the site, whose address is ``html.baseurl`` in ``_config.yml``.

Any role, directive or MyST syntax without a rule here stops the build with an error naming the
chapter and the cell: add a rule rather than let raw markup through.

Why a converter of our own, inside the build: ``sphinx-tojupyter`` (QuantEcon's) is a separate
builder that writes notebooks back from the doctree, so it re-renders every paragraph, list and
formula (and knows neither MyST-NB's glue nor gated solutions); jupytext with a filter would
work on the source but has no access to the numbers and titles Sphinx assigns. Here the
author's Markdown is kept line for line, only MyST constructs are rewritten, and what they
become comes from the same build, with the same numbers, as the site.
"""

from __future__ import annotations

import copy
import functools
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urljoin

import nbformat
from sphinx.util import logging

logger = logging.getLogger(__name__)

#: The folder of the student notebooks, on the site and in the repository.
STUDENT_FOLDER = "notebooks"

ADMONITION_TITLES = {
    "note": "Note",
    "tip": "Tip",
    "hint": "Hint",
    "important": "Important",
    "warning": "Warning",
    "caution": "Caution",
    "attention": "Attention",
    "danger": "Danger",
    "error": "Error",
    "seealso": "See also",
}
PROOF_KINDS = {
    "axiom", "theorem", "lemma", "algorithm", "definition", "remark", "conjecture", "corollary",
    "criterion", "example", "property", "observation", "proposition", "assumption", "notation",
}  # fmt: skip
#: What the site folds, and how a student notebook folds it (JupyterLab, Notebook 7; Colab).
FOLDING_TAGS = {
    "hide-input": {"source_hidden": True},
    "remove-input": {"source_hidden": True},
    "hide-output": {"outputs_hidden": True},
    "remove-output": {"outputs_hidden": True},
    "hide-cell": {"source_hidden": True, "outputs_hidden": True},
    "remove-cell": {"source_hidden": True, "outputs_hidden": True},
}
GLUE_MIME_PREFIX = "application/papermill.record/"

FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,}|:{3,})(?P<info>.*)$")
DIRECTIVE_INFO = re.compile(r"^\{(?P<name>[^}\s]+)\}\s*(?P<argument>.*)$")
OPTION = re.compile(r"^:(?P<key>[\w-]+):\s*(?P<value>.*)$")
HEADING = re.compile(r"^(?P<hashes>#{1,6})(?P<rest>\s.*|)$")
TARGET = re.compile(r"^\s{0,3}\([^)\s]+\)=\s*$")
COMMENT = re.compile(r"^\s{0,3}%")
BLOCK_BREAK = re.compile(r"^\s{0,3}\+\+\+")
AMSMATH = re.compile(r"^\\begin\{(?:equation|multline|gather|align|alignat|flalign|eqnarray)\*?\}")
AMSMATH_END = re.compile(r"\\end\{(?:equation|multline|gather|align|alignat|flalign|eqnarray)\*?\}\s*$")
DEFINITION = re.compile(r"^:\s+\S")
MATH_BLOCK_END = re.compile(r"^(?P<body>.*?)\$\$\s*(?:\((?P<label>[^)\s]+)\))?\s*$")
#: Inline syntax, tried in this order at each position: escapes and code spans are kept as they
#: are, roles and links converted, math kept (only made one line inside block quotes).
INLINE = re.compile(
    r"(?P<escape>\\[\\`*_{}\[\]()#+\-.!$|<>~])"
    r"|(?P<role>\{(?P<name>[A-Za-z][\w.:+\-]*)\}(?P<ticks>`+)(?P<content>.+?)(?P=ticks))"
    r"|(?P<code>(?P<codeticks>`+).+?(?P=codeticks))"
    r"|(?P<math>\$\$.+?\$\$|\$(?:\\.|[^$\\])+?\$)"
    r"|(?P<link>(?P<bang>!?)\[(?P<text>(?:\\.|[^\]\\])*)\]\((?P<destination>[^)\s]*)\))"
    r"|(?P<substitution>\{\{)"
    r"|(?P<footnote>\[\^[^\]]+\])",
    re.DOTALL,
)
URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
#: MyST that must never reach a student notebook (checked on every converted cell).
LEFTOVER_MYST = re.compile(
    r"\{[A-Za-z][\w.:+\-]*\}`"  # a role
    r"|^\s*(?:`{3,}|:{3,}|~{3,})\{"  # a directive
    r"|^\s{0,3}\([^)\s]+\)=\s*$"  # a target
    r"|\$\$\s*\([^)\s]+\)\s*$",  # an equation label
    re.MULTILINE,
)


class ConversionError(Exception):
    """A chapter uses MyST that the student notebooks have no rule for (or that is malformed)."""


class Resolver:
    """What the converter needs from the built site; :class:`SiteResolver` answers from Sphinx."""

    def role(self, name: str, content: str) -> str:
        """Markdown for the role ``{name}`content``` (a cross-reference, citation or inline role)."""
        raise NotImplementedError

    def link(self, text: str, destination: str) -> str:
        """Markdown for a MyST link ``[text](destination)`` to a label or a document of the book."""
        raise NotImplementedError

    def equation_number(self, label: str) -> str:
        """The site's number of the labelled equation, as it shows it, e.g. ``(3.1)``."""
        raise NotImplementedError

    def section_number(self, index: int) -> str:
        """The number prefix of the chapter's ``index``-th heading, e.g. ``3.1. `` (or ``""``)."""
        raise NotImplementedError

    def numbered_title(self, kind: str, index: int) -> str:
        """Title of the ``index``-th ``"exercise"`` or ``"proof"`` block, e.g. ``Theorem 3.1``."""
        raise NotImplementedError

    def exercise_title(self, label: str) -> str:
        """Title of the exercise labelled ``label``, e.g. ``Exercise 3.2``."""
        raise NotImplementedError

    def finish(self, headings: int, counts: dict[str, int]) -> None:
        """Check that the chapter had as many headings and numbered blocks as the site numbered."""


def glue_values(notebook: nbformat.NotebookNode) -> dict[str, dict[str, str]]:
    """Every glued value of an executed chapter: name → {MIME type: data}, as MyST-NB reads them."""
    values = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            if name is not None:
                values[name] = {
                    mime.removeprefix(GLUE_MIME_PREFIX): data for mime, data in output.get("data", {}).items()
                }
    return values


def format_glue(value: str, spec: str) -> str:
    """A glued ``text/plain`` value formatted with ``spec``, exactly as ``{glue:text}`` on the site."""
    from myst_nb.core.variables import format_plain_text

    return format_plain_text(value, spec)


def _flatten(math: str) -> str:
    if re.search(r"(?<!\\)%", math):
        raise ConversionError(f"a TeX comment inside math that must go on one line: {math[:60]!r}")
    return re.sub(r"\s*\n\s*", " ", math)


FENCED_CODE = re.compile(r"(^\s*(?:`{3,}|~{3,}).*?^\s*(?:`{3,}|~{3,})\s*$)", re.MULTILINE | re.DOTALL)


def _outside_code(text: str, change: Callable[[str], str]) -> str:
    """``text`` with ``change`` applied to everything but its fenced code blocks."""
    parts = FENCED_CODE.split(text)
    return "".join(change(part) if index % 2 == 0 else part for index, part in enumerate(parts))


def _prose(text: str) -> str:
    """``text`` without its fenced code blocks and code spans."""
    parts = FENCED_CODE.split(text)[::2]
    return "".join(INLINE.sub(lambda m: "" if m.group("code") else m.group(0), part) for part in parts)


def one_line_math(text: str) -> str:
    """``text`` with the line breaks inside its math (``$…$``, ``$$…$$``) made spaces (not in code)."""
    return _outside_code(
        text, lambda part: INLINE.sub(lambda m: _flatten(m.group(0)) if m.group("math") else m.group(0), part)
    )


def tidy(text: str) -> str:
    """``text`` without leading and trailing blank lines, and at most one blank line in a row."""
    return _outside_code(text, lambda part: re.sub(r"\n[ \t]*\n(?:[ \t]*\n)+", "\n\n", part)).strip("\n")


def block_quote(title: str, body: str) -> str:
    """A block quote opening with the bold ``title``; math inside is put on one line each."""
    lines = [f"**{title}**"]
    if body.strip():
        lines += [""] + one_line_math(tidy(body)).split("\n")
    return "\n".join(f"> {line}" if line.strip() else ">" for line in lines)


def fold(summary: str, body: str) -> str:
    """An HTML ``<details>`` fold with a bold summary; its Markdown body renders inside it."""
    return f"<details>\n<summary><strong>{summary}</strong></summary>\n\n{tidy(body)}\n\n</details>"


@dataclass
class Directive:
    """One MyST directive as written: name, argument, options and body text."""

    name: str
    argument: str
    options: dict[str, str]
    body: str


@dataclass
class Piece:
    """Converted Markdown of one cell: plain text, or text inside a gated solution."""

    text: str
    solution: str | None = None  # the solution's title when the text is inside one
    continued: bool = False  # the solution began in an earlier cell


@dataclass
class MystToMarkdown:
    """Converts a chapter's Markdown cells, in order, to plain Jupyter Markdown.

    One converter serves one chapter: it numbers headings, exercises and theorems in the order
    they come (the site's numbers come from ``resolver``), and it keeps the state of a gated
    solution (``{solution-start}`` … ``{solution-end}``) from one cell to the next.
    """

    resolver: Resolver
    glue: dict[str, dict[str, str]]
    headings: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    exercise_subtitles: dict[str, str] = field(default_factory=dict)
    gated: str | None = None  # title of the gated solution we are in, if any
    _pieces: list[Piece] = field(default_factory=list)
    _text: list[str] = field(default_factory=list)
    _continued: bool = False

    # -- cells ------------------------------------------------------------------------------

    def convert_cell(self, source: str) -> list[Piece]:
        """The converted Markdown of one cell, split where a gated solution starts or ends."""
        self._pieces, self._text = [], []
        self._continued = self.gated is not None
        self._blocks(source, top=True, out=self._text)
        self._flush()
        for piece in self._pieces:  # (code blocks and code spans may show MyST: they are code)
            leftover = LEFTOVER_MYST.search(_prose(piece.text))
            if leftover:
                raise ConversionError(f"MyST left after conversion: {leftover.group(0)!r}")
        # an empty piece stays only where a gated solution starts (its fold announces the code)
        return [p for p in self._pieces if p.text.strip() or (p.solution is not None and not p.continued)]

    def finish(self) -> None:
        """Check the end of the chapter: no open gated solution, numbering as on the site."""
        if self.gated is not None:
            raise ConversionError(f"{self.gated!r}: solution-start without solution-end")
        self.resolver.finish(self.headings, self.counts)

    def _flush(self) -> None:
        text = tidy("\n".join(self._text))
        self._text.clear()
        if text or self.gated is not None:
            self._pieces.append(Piece(text, self.gated, self._continued if self.gated else False))

    # -- blocks -----------------------------------------------------------------------------

    def _blocks(self, source: str, *, top: bool, out: list[str]) -> None:
        """Convert the blocks of ``source`` into lines appended to ``out``."""
        lines = source.split("\n")
        paragraph: list[str] = []

        def flush_paragraph() -> None:
            if paragraph:
                out.append(self._inline("\n".join(paragraph)))
                paragraph.clear()

        index = 0
        while index < len(lines):
            line = lines[index]
            fence = FENCE.match(line)
            if fence and fence.group("info").strip().startswith("{"):
                flush_paragraph()
                if fence.group("indent"):
                    raise ConversionError(f"indented directive (inside a list?): {line.strip()!r}")
                end = self._closing_fence(lines, index, fence.group("fence"))
                directive = self._parse_directive(fence.group("info").strip(), lines[index + 1 : end], line)
                self._directive(directive, top=top, out=out)
                index = end + 1
            elif fence and fence.group("fence")[0] in "`~":
                flush_paragraph()
                end = self._closing_fence(lines, index, fence.group("fence"))
                out.extend(lines[index : end + 1])
                index = end + 1
            elif fence:
                raise ConversionError(f"a colon fence without a directive name: {line!r}")
            elif self._opens_math_block(line):
                flush_paragraph()
                index = self._math_block(lines, index, out=out)
            elif TARGET.match(line) or COMMENT.match(line) or BLOCK_BREAK.match(line):
                index += 1  # site-only: a label, a comment, a cell break
            elif AMSMATH.match(line):  # a top-level environment: display math in every front end
                flush_paragraph()
                end = next((i for i in range(index, len(lines)) if AMSMATH_END.search(lines[i])), None)
                if end is None:
                    raise ConversionError(f"unclosed {line.strip()!r}")
                out.extend(["", "$$", *lines[index : end + 1], "$$", ""])
                index = end + 1
            elif DEFINITION.match(line) and paragraph:
                raise ConversionError(f"a definition list ({paragraph[-1]!r}): no rule yet")
            elif top and HEADING.match(line):
                flush_paragraph()
                heading = HEADING.match(line)
                number = self.resolver.section_number(self.headings)
                self.headings += 1
                out.append(f"{heading.group('hashes')} {number}{self._inline(heading.group('rest').strip())}")
                index += 1
            else:
                paragraph.append(line)
                index += 1
        flush_paragraph()

    @staticmethod
    def _closing_fence(lines: list[str], start: int, fence: str) -> int:
        closing = re.compile(rf"^\s*{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        for index in range(start + 1, len(lines)):
            if closing.match(lines[index]):
                return index
        raise ConversionError(f"unclosed fence {lines[start].strip()!r}")

    @staticmethod
    def _parse_directive(info: str, body: list[str], line: str) -> Directive:
        match = DIRECTIVE_INFO.match(info)
        if match is None:
            raise ConversionError(f"malformed directive {line!r}")
        options: dict[str, str] = {}
        if body and body[0].strip() == "---":  # YAML options block
            import yaml

            end = body.index("---", 1) if "---" in body[1:] else None
            if end is None:
                raise ConversionError(f"unclosed option block in {line!r}")
            options = {str(k): str(v) for k, v in (yaml.safe_load("\n".join(body[1:end])) or {}).items()}
            body = body[end + 1 :]
        else:
            while body and OPTION.match(body[0]):
                option = OPTION.match(body[0])
                options[option.group("key")] = option.group("value").strip()
                body = body[1:]
        return Directive(match.group("name"), match.group("argument").strip(), options, "\n".join(body))

    @staticmethod
    def _opens_math_block(line: str) -> bool:
        """``$$`` starts a line and either closes at its end or not on this line (MyST's rule)."""
        stripped = line.lstrip()
        if not stripped.startswith("$$") or len(line) - len(stripped) > 3:
            return False
        rest = stripped[2:]
        return "$$" not in rest or MATH_BLOCK_END.match(rest) is not None

    def _math_block(self, lines: list[str], start: int, *, out: list[str]) -> int:
        """Display math from line ``start``: blank lines around it, a label made a ``\\tag*``."""
        first = lines[start].lstrip()[2:]
        end, body_lines = start, [first]
        closing = MATH_BLOCK_END.match(first)
        while closing is None:
            end += 1
            if end == len(lines):
                raise ConversionError(f"unclosed $$ from {lines[start]!r}")
            body_lines.append(lines[end])
            closing = MATH_BLOCK_END.match(lines[end])
        body_lines[-1] = closing.group("body")
        out.extend(["", self._display_math("\n".join(body_lines), closing.group("label")), ""])
        return end + 1

    def _display_math(self, body: str, label: str | None) -> str:
        body = body.strip("\n")
        if label:
            body = f"{body.rstrip()} \\tag*{{{self.resolver.equation_number(label)}}}"
        return f"$$\n{body}\n$$"

    # -- directives -------------------------------------------------------------------------

    def _body(self, text: str) -> str:
        lines: list[str] = []
        self._blocks(text, top=False, out=lines)
        return "\n".join(lines).strip("\n")

    def _count(self, kind: str) -> int:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        return self.counts[kind] - 1

    def _directive(self, directive: Directive, *, top: bool, out: list[str]) -> None:
        name, argument = directive.name, directive.argument
        kind = name.removeprefix("prf:")
        subtitle = f" ({self._inline(argument)})" if argument else ""
        folded = "dropdown" in directive.options.get("class", "").split()
        if name in ("solution-start", "solution-end"):
            self._gate(directive, top=top)
            return
        if name in ADMONITION_TITLES or name == "admonition":
            title = self._inline(argument) if name == "admonition" else ADMONITION_TITLES[name]
            if name == "admonition" and not argument:
                raise ConversionError("an admonition without a title")
            block = (
                fold(title, self._body(directive.body))
                if folded
                else block_quote(title, self._body(directive.body))
            )
        elif name == "dropdown":
            block = fold(self._inline(argument) or "Details", self._body(directive.body))
        elif name in ("margin", "sidebar"):
            block = block_quote(self._inline(argument) or "Aside", self._body(directive.body))
        elif name in ("epigraph", "pull-quote", "highlights"):
            block = "\n".join(
                f"> {line}" if line.strip() else ">" for line in self._body(directive.body).split("\n")
            )
        elif name.startswith("prf:") and kind in PROOF_KINDS:
            title = self.resolver.numbered_title("proof", self._count("proof")) + subtitle
            block = block_quote(title, self._body(directive.body))
        elif name == "prf:proof":
            block = block_quote("Proof." + subtitle, self._body(directive.body))
        elif name == "exercise":
            title = self.resolver.numbered_title("exercise", self._count("exercise"))
            if "label" in directive.options:
                self.exercise_subtitles[directive.options["label"]] = subtitle
            block = block_quote(title + subtitle, self._body(directive.body))
        elif name == "solution":
            block = fold(self._solution_title(argument), self._body(directive.body))
        elif name == "math":
            block = self._display_math(directive.body, directive.options.get("label"))
        elif name in ("code-block", "code", "sourcecode"):
            block = f"```{argument}\n{directive.body.strip(chr(10))}\n```"
        else:
            raise ConversionError(f"no rule for the directive {{{name}}}")
        out.extend(["", block, ""])

    def _solution_title(self, label: str) -> str:
        if not label:
            raise ConversionError("a solution without the label of its exercise")
        return f"Solution to {self.resolver.exercise_title(label)}{self.exercise_subtitles.get(label, '')}"

    def _gate(self, directive: Directive, *, top: bool) -> None:
        if not top:
            raise ConversionError(f"{{{directive.name}}} inside another directive")
        if directive.body.strip():
            raise ConversionError(f"{{{directive.name}}} has a body: its content goes after it")
        if directive.name == "solution-start":
            if self.gated is not None:
                raise ConversionError("solution-start inside a solution")
            self._flush()
            self.gated = self._solution_title(directive.argument)
            self._continued = False
        else:
            if self.gated is None:
                raise ConversionError("solution-end without solution-start")
            self._flush()
            self.gated = None

    # -- inline -----------------------------------------------------------------------------

    def _inline(self, text: str) -> str:
        def convert(match: re.Match) -> str:
            if match.group("role"):
                return self._role(match.group("name"), match.group("content"))
            if match.group("link"):
                return self._link(match)
            if match.group("substitution"):
                raise ConversionError("a MyST substitution {{ … }}")
            if match.group("footnote"):
                raise ConversionError(f"a footnote {match.group(0)!r}")
            return match.group(0)

        return INLINE.sub(convert, text)

    def _role(self, name: str, content: str) -> str:
        if name in ("glue", "glue:", "glue:any", "glue:text", "glue:md"):
            return self._glue(name, content)
        return self.resolver.role(name, content)

    def _glue(self, name: str, content: str) -> str:
        key, spec = content, ""
        if name in ("glue:text", "glue:md") and ":" in content:
            key, spec = content.rsplit(":", 1)
        if "::" in key:
            raise ConversionError(f"glue from another document: {content!r}")
        if key not in self.glue:
            raise ConversionError(f"{{{name}}}`{content}`: nothing glued under {key!r}")
        data = self.glue[key]
        if name == "glue:text":
            return format_glue(data["text/plain"], spec or "s")
        if name == "glue:md" or "text/markdown" in data:
            return self._inline(data["text/markdown"])
        if "text/latex" in data:
            return data["text/latex"]
        if "text/plain" in data:
            return data["text/plain"]
        raise ConversionError(f"{{{name}}}`{content}`: no text to paste (MIME types {sorted(data)})")

    def _link(self, match: re.Match) -> str:
        destination = match.group("destination")
        if URL_SCHEME.match(destination):
            return match.group(0)
        if match.group("bang"):
            raise ConversionError(f"an image from a local file: {match.group(0)!r}")
        return self.resolver.link(self._inline(match.group("text")), destination)


def student_notebook(
    chapter: nbformat.NotebookNode, resolver: Resolver, header: str
) -> nbformat.NotebookNode:
    """The student notebook of ``chapter`` (an executed MyST notebook), opening with ``header``."""
    converter = MystToMarkdown(resolver, glue_values(chapter))
    notebook = nbformat.v4.new_notebook(metadata=copy.deepcopy(chapter.metadata))
    notebook.nbformat_minor = chapter.nbformat_minor
    notebook.cells.append(_markdown_cell(header, "student-header", {}))
    cells = chapter.cells
    for position, cell in enumerate(cells):
        if cell.cell_type == "code":
            notebook.cells.append(_code_cell(cell, in_solution=converter.gated is not None))
            continue
        if cell.cell_type != "markdown":
            notebook.cells.append(copy.deepcopy(cell))
            continue
        try:
            pieces = converter.convert_cell(cell.source)
        except ConversionError as error:
            raise ConversionError(f"cell {position} ({cell.get('id', '?')}): {error}") from error
        following = next((c.cell_type for c in cells[position + 1 :] if c.cell_type != "raw"), None)
        parts = []
        for number, piece in enumerate(pieces):
            if piece.solution is None:
                parts.append(piece.text)
                continue
            text = piece.text
            last = number == len(pieces) - 1
            if last and converter.gated is not None and following == "code":
                text += "\n\n*The solution's code is in the folded cell below: click its bar to show it.*"
            summary = piece.solution + (" (continued)" if piece.continued else "")
            parts.append(fold(summary, text))
        source = tidy("\n\n".join(parts))
        if source:
            notebook.cells.append(_markdown_cell(source, cell.get("id"), cell.metadata))
    converter.finish()
    return notebook


def _markdown_cell(source: str, cell_id: str | None, metadata: dict) -> nbformat.NotebookNode:
    cell = {"cell_type": "markdown", "id": cell_id, "metadata": copy.deepcopy(metadata), "source": source}
    return nbformat.from_dict(cell)  # (the notebook is validated once, when it is complete)


def _code_cell(cell: nbformat.NotebookNode, *, in_solution: bool) -> nbformat.NotebookNode:
    """The chapter's code cell, unchanged but for folding metadata (solutions, ``hide-*`` tags).

    Its outputs are the chapter's own objects, not copies (a chapter is read to be converted).
    """
    result = nbformat.from_dict({**cell, "metadata": copy.deepcopy(cell.metadata)})
    hidden: dict[str, bool] = {}
    for tag in cell.metadata.get("tags", []):
        hidden.update(FOLDING_TAGS.get(tag, {}))
    if in_solution:
        hidden.update(source_hidden=True, outputs_hidden=True)
    if hidden:
        result.metadata["jupyter"] = {**result.metadata.get("jupyter", {}), **hidden}
        if hidden.get("source_hidden"):
            result.metadata["cellView"] = "form"  # Colab: the code folded behind "Show code"
    return result


# -- the site: Sphinx resolves references, numbers and titles ----------------------------------


def site_base_url(config: object) -> str:
    """The course site's address (``html.baseurl`` in ``_config.yml``), ending in ``/``."""
    base = str(getattr(config, "html_baseurl", "") or "")
    if not URL_SCHEME.match(base):
        raise ConversionError("set html.baseurl in _config.yml: the student notebooks link to the site")
    return base.rstrip("/") + "/"


def student_notebook_name(docname: str) -> str:
    """``notebooks/03_momentum.ipynb`` for the chapter ``chapters/03_momentum``."""
    return f"{STUDENT_FOLDER}/{Path(docname).name}.ipynb"


class SiteResolver(Resolver):
    """Answers the converter from Sphinx's environment after the build: the site's own numbers."""

    def __init__(
        self, app: object, docname: str, citations: dict[tuple[str, str], str] | None = None
    ) -> None:
        from docutils import nodes
        from sphinx_exercise.nodes import is_exercise_node

        self.app, self.env, self.docname = app, app.env, docname
        self.page = site_base_url(app.config) + app.builder.get_target_uri(docname)
        doctree = self.env.get_doctree(docname)
        numbers = self.env.toc_secnumbers.get(docname, {})
        suffix = app.config.html_secnumber_suffix
        self.sections = []
        titled = (s for s in doctree.findall(nodes.section) if s.children and isinstance(s[0], nodes.title))
        for position, section in enumerate(titled):  # (exercises and theorems hold untitled ones)
            anchor = "" if position == 0 else "#" + section["ids"][0]
            number = numbers.get(anchor)
            self.sections.append(".".join(map(str, number)) + suffix if number else "")
        figures = self.env.toc_fignumbers.get(docname, {})
        self.blocks: dict[str, list[str]] = {"exercise": [], "proof": []}
        for node in doctree.findall(is_exercise_node):
            number = figures.get("exercise", {}).get(node["ids"][0])
            title = app.config.numfig_format["exercise"]
            self.blocks["exercise"].append(title % ".".join(map(str, number)) if number else title.split()[0])
        for node in doctree.findall(lambda n: isinstance(n, nodes.Element) and "realtype" in n.attributes):
            number = figures.get(node["countertype"], {}).get(node["ids"][0])
            kind = node["realtype"].title()
            self.blocks["proof"].append(f"{kind} {'.'.join(map(str, number))}" if number else kind)
        self._cache: dict[tuple[str, str], object] = {}
        # A citation reads the same in every chapter (one bibliography, absolute links): resolve
        # each once for the whole book (sphinxcontrib-bibtex takes ~50 ms a citation).
        self._citations = {} if citations is None else citations

    # Each role is run by Sphinx's own role function, and the result resolved by every
    # post-transform (domains' resolvers, sphinx-exercise's, sphinxcontrib-bibtex's), as on the page.
    def _resolved(self, name: str, content: str, make: Callable[..., list] | None = None) -> object:
        key = (name, content)
        if key in self._cache:
            return self._cache[key]
        from docutils import nodes
        from docutils.parsers.rst import roles
        from docutils.parsers.rst.languages import en
        from sphinx.transforms import SphinxTransformer
        from sphinx.util.docutils import new_document, sphinx_domains

        document = new_document(str(self.env.doc2path(self.docname)))
        document.settings.env = self.env
        document.reporter.get_source_and_line = lambda line=None: (document["source"], line)
        container = nodes.inline()
        paragraph = nodes.paragraph("", "", container)
        document += paragraph
        saved = copy.copy(self.env.temp_data)
        self.env.temp_data["docname"] = self.docname
        try:
            if make is not None:
                container += make()
            else:
                with sphinx_domains(self.env):
                    function, messages = roles.role(name, en, 0, document.reporter)
                if function is None:
                    raise ConversionError(f"no role {{{name}}}")
                inliner = SimpleNamespace(document=document, reporter=document.reporter, parent=paragraph)
                result, messages = function(name, f"{{{name}}}`{content}`", content, 0, inliner, {}, [])
                if any(message["level"] >= 3 for message in messages):
                    raise ConversionError(f"{{{name}}}`{content}`: {[m.astext() for m in messages]}")
                container += result
            transformer = SphinxTransformer(document)
            transformer.set_environment(self.env)
            transformer.add_transforms(self.app.registry.get_post_transforms())
            transformer.apply_transforms()
        finally:
            self.env.temp_data = saved
        self._cache[key] = container
        return container

    def role(self, name: str, content: str) -> str:
        """Markdown of the role as the site resolves it, linked to the site."""
        if not name.startswith("cite:"):
            return self._markdown(self._resolved(name, content))
        if (name, content) not in self._citations:
            self._citations[name, content] = self._markdown(self._resolved(name, content))
        return self._citations[name, content]

    def link(self, text: str, destination: str) -> str:
        """Markdown of a MyST link, resolved by MyST's reference resolver as on the site."""
        from docutils import nodes
        from sphinx import addnodes

        options = {"refdoc": self.docname, "reftype": "myst", "refexplicit": bool(text), "refwarn": True}
        if destination.startswith("#"):  # a label, here or in another chapter
            reference = addnodes.pending_xref(refdomain=None, reftarget=destination[1:], **options)
        else:  # a page of the book, e.g. 02_sgd.ipynb or ../intro.md#anchor
            path, _, anchor = destination.partition("#")
            docname = self.env.path2doc(self.env.relfn2path(path, self.docname)[1])
            if docname is None:
                raise ConversionError(f"a link to {destination!r}, which is not a page of the book")
            reference = addnodes.pending_xref(
                refdomain="doc", reftarget=docname, reftargetid=anchor or None, **options
            )
        reference += nodes.inline("", "LINK-TEXT" if text else "", classes=["xref", "myst"])
        resolved = self._resolved("myst-link", f"{bool(text)} {destination}", lambda: [reference])
        markdown = self._markdown(resolved)
        return markdown.replace("LINK-TEXT", text) if text else markdown

    def equation_number(self, label: str) -> str:
        """The equation's number as the site's ``{eq}`` shows it, e.g. ``(3.1)``."""
        return self._resolved("eq", label).astext()

    def section_number(self, index: int) -> str:
        """The site's number of the ``index``-th section of the chapter, e.g. ``3.1. ``."""
        if index >= len(self.sections):
            raise ConversionError(f"heading {index + 1} is not a section on the site")
        return self.sections[index]

    def numbered_title(self, kind: str, index: int) -> str:
        """``Exercise 3.1``, ``Theorem 3.1``: the ``index``-th block of ``kind``, numbered as on the site."""
        if index >= len(self.blocks[kind]):
            raise ConversionError(f"{kind} {index + 1} is not on the site")
        return self.blocks[kind][index]

    def exercise_title(self, label: str) -> str:
        """``Exercise 3.2``: the exercise labelled ``label``, numbered as on the site."""
        entry = getattr(self.env, "sphinx_exercise_registry", {}).get(label)
        if entry is None:
            raise ConversionError(f"a solution to {label!r}, which is no exercise")
        number = self.env.toc_fignumbers.get(entry["docname"], {}).get("exercise", {}).get(label)
        title = self.app.config.numfig_format["exercise"]
        return title % ".".join(map(str, number)) if number else title.split()[0]

    def finish(self, headings: int, counts: dict[str, int]) -> None:
        """The chapter had exactly the sections, exercises and theorems the site numbered."""
        if headings != len(self.sections):
            raise ConversionError(f"{headings} headings, but {len(self.sections)} sections on the site")
        for kind, titles in self.blocks.items():
            if counts.get(kind, 0) != len(titles):
                raise ConversionError(f"{counts.get(kind, 0)} {kind} blocks, {len(titles)} on the site")

    def _markdown(self, node: object, citation: bool = False) -> str:
        from docutils import nodes
        from sphinx import addnodes

        def inner() -> str:
            cited = citation or "bibtex-citation" in node.get("classes", [])
            return "".join(self._markdown(child, cited) for child in node.children)

        if isinstance(node, nodes.Text):
            text = str(node)
            if citation:  # the site's [2019] would read as a Markdown link
                text = text.replace("[", "(").replace("]", ")")
            return re.sub(r"([\\`*_\[\]<>$])", r"\\\1", text)
        if isinstance(node, addnodes.pending_xref):
            raise ConversionError(f"unresolved reference {node.get('reftype')}:{node.get('reftarget')!r}")
        if isinstance(node, nodes.math):
            return f"${node.astext()}$"
        if isinstance(node, nodes.literal):
            return f"`{node.astext()}`"
        if isinstance(node, nodes.reference):
            url = node.get("refuri")
            url = urljoin(self.page, url) if url else f"{self.page}#{node['refid']}"
            return f"[{inner().strip()}]({url})"
        wrappers = {
            nodes.emphasis: "*{}*",
            nodes.strong: "**{}**",
            nodes.subscript: "<sub>{}</sub>",
            nodes.superscript: "<sup>{}</sup>",
            nodes.inline | nodes.abbreviation | nodes.paragraph: "{}",
        }
        for kind, template in wrappers.items():
            if isinstance(node, kind):
                return template.format(inner())
        raise ConversionError(f"no Markdown for a {type(node).__name__} node ({node.astext()!r})")


def _header(app: object, docname: str, page: str) -> str:
    """The first cell of a student notebook: what it is, where its page is, how to run it."""
    env = app.env
    title = env.titles[docname].astext()
    number = env.toc_secnumbers.get(docname, {}).get("")
    chapter = f"chapter {'.'.join(map(str, number))}" if number else "the chapter"
    source = Path(env.doc2path(docname)).relative_to(Path(app.srcdir)).as_posix()
    return (
        f"> **Student notebook.** This is {chapter} of *{app.config.html_title}*, "
        f"[{title}]({page}), as a plain Jupyter notebook for Colab, Binder, JupyterLab and Notebook 7.\n"
        ">\n"
        "> Run all cells (*Run → Run All Cells*; on Colab *Runtime → Run all*): the first one installs the "
        "course library `nqm_lib` where it is missing, and the interactive figures get their controls. "
        "The numbers in the text are those of the course's own run of these cells. The solutions of the "
        "exercises are folded: click to open them. References to figures, sections, other chapters and the "
        "bibliography link to the course site.\n"
        ">\n"
        f"> *Generated from `{source}` by `make book`: edit the chapter, not this file.*"
    )


def notebook_docnames(env: object) -> list[str]:
    """The documents of the book whose source is a notebook: the chapters."""
    return sorted(name for name in env.found_docs if str(env.doc2path(name)).endswith(".ipynb"))


def write_student_notebooks(app: object, exception: Exception | None) -> None:
    """After an HTML build: write every chapter's student notebook into ``<site>/notebooks/``."""
    if exception is not None or app.builder.format != "html":
        return
    start = time.perf_counter()
    target = Path(app.outdir) / STUDENT_FOLDER
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    # Resolving a reference reads its target's doctree; read each one once (they are only read).
    app.env.get_doctree = functools.lru_cache(maxsize=None)(app.env.get_doctree)
    citations: dict[tuple[str, str], str] = {}
    try:
        written = [_write_one(app, name, target.parent, citations) for name in notebook_docnames(app.env)]
    finally:
        del app.env.get_doctree  # the method again
    repeated = {name for name in written if written.count(name) > 1}
    if repeated:
        raise ConversionError(f"two chapters would have the same student notebook: {sorted(repeated)}")
    # Every chapter page's .ipynb button now hands out the student notebook, so the copies of the
    # executed chapters that Sphinx keeps in _sources/ (15 MB) are linked from nowhere: drop them.
    for name in notebook_docnames(app.env):
        (Path(app.outdir) / "_sources" / f"{name}.ipynb").unlink(missing_ok=True)
    logger.info(
        f"student notebooks: {len(written)} written to {target} in {time.perf_counter() - start:.1f} s"
    )


def _write_one(app: object, docname: str, outdir: Path, citations: dict) -> str:
    """Write the student notebook of ``docname`` under ``outdir``; return its name."""
    resolver = SiteResolver(app, docname, citations)
    chapter = nbformat.read(app.env.doc2path(docname), as_version=4)
    try:
        notebook = student_notebook(chapter, resolver, _header(app, docname, resolver.page))
    except ConversionError as error:
        raise ConversionError(f"{docname}: {error}") from error
    nbformat.validate(notebook)
    name = student_notebook_name(docname)
    nbformat.write(notebook, outdir / name)
    return name


def point_buttons_at_student_notebooks(
    app: object, pagename: str, templatename: str, context: dict, doctree: object
) -> None:
    """The launch buttons (Colab, Binder) and the ``.ipynb`` download open the student notebook."""
    if pagename not in app.env.found_docs or not str(app.env.doc2path(pagename)).endswith(".ipynb"):
        return
    prefix = app.config.html_theme_options.get("path_to_docs", "").strip("/")
    prefix = f"{prefix}/" if prefix else ""
    source, student = f"{prefix}{pagename}.ipynb", f"{prefix}{student_notebook_name(pagename)}"
    for group in context.get("header_buttons", []):
        for button in group.get("buttons", []):
            if button.get("type") != "link":
                continue
            if group.get("label") == "launch-buttons":
                if source not in button["url"]:
                    raise ConversionError(f"{pagename}: launch button {button['url']} does not name {source}")
                button["url"] = button["url"].replace(source, student)
            elif group.get("label") == "download-buttons" and button.get("text") == ".ipynb":
                button["url"] = context["pathto"](student_notebook_name(pagename), 1)
                button["tooltip"] = "Download the notebook"


def setup(app: object) -> dict[str, object]:
    """Register the build-finished writer and the button hook (after the theme's, priority 501)."""
    app.connect("build-finished", write_student_notebooks)
    app.connect("html-page-context", point_buttons_at_student_notebooks, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
