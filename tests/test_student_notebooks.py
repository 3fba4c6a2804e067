"""The student notebooks (``notebooks/``): the chapters in plain Jupyter Markdown.

``book_ext/student_notebooks.py`` writes them at the end of every site build and ``make book``
copies them to ``notebooks/``. These tests check the committed ones (no MyST left, every glued
number written in as the site formats it, every solution folded, the chapters' code cells
unchanged), that they are what the build makes now, that their numbers, titles and links are the
site's, and, on a small book built here, what each MyST construct becomes.
"""

import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import pytest
import yaml

from book_ext.student_notebooks import (
    ConversionError,
    MystToMarkdown,
    Resolver,
    student_notebook,
    tidy,
)
from tests.small_book import BASE_URL, write_small_book
from tools.notebooks import chapter_notebooks, first_cell_source

ROOT = Path(__file__).resolve().parent.parent
STUDENT = ROOT / "notebooks"
CHAPTERS = chapter_notebooks()
GLUE_ROLE = re.compile(r"\{(glue(?::text|:|))\}`([^`]+)`")
#: MyST that Colab, JupyterLab, Notebook 7 and GitHub would show as raw markup.
RAW_MYST = re.compile(
    r"\{glue|:::\{|```\{|~~~\{|\{prf:|\{doc\}|\{cite|\{numref\}|\{eq\}|\{math\}|\{\{"
    r"|\{[a-z][\w.:+-]*\}`"  # any role ({ref}`…` among them; \text{ref} in a formula is not one)
    r"|^\s*\([^)\s]+\)=\s*$"  # a target
    r"|\$\$\s*\([^)\s]+\)\s*$"  # an equation label
    r"|^%",  # a MyST comment
    re.MULTILINE,
)


def student(chapter: Path) -> Path:
    return STUDENT / chapter.name


def markdown(notebook) -> str:
    return "\n\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")


def site_base_url() -> str:
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    return config["html"]["baseurl"]


def glued_values(notebook) -> dict[str, str]:
    return {
        output.metadata["scrapbook"]["name"]: output.data["application/papermill.record/text/plain"]
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if "scrapbook" in output.get("metadata", {})
    }


def formatted(value: str, spec: str | None) -> str:
    """A glued value as ``{glue:text}`name:spec``` shows it (written here independently of MyST-NB)."""
    if not spec:
        return value
    return format(int(value) if spec[-1] in "dxXob" else float(value), spec)


def glued_texts_by_cell(path: Path) -> dict[str, list[str]]:
    """For each Markdown cell of a chapter (by id), the glued numbers its text shows, formatted."""
    notebook = nbformat.read(path, as_version=4)
    values = glued_values(notebook)
    result = {}
    for cell in notebook.cells:
        if cell.cell_type != "markdown":
            continue
        texts = []
        for role, content in GLUE_ROLE.findall(cell.source):
            name, _, spec = content.partition(":") if role == "glue:text" else (content, "", "")
            texts.append(formatted(values[name], spec))
        if texts:
            result[cell.id] = texts
    return result


def glued_texts(path: Path) -> list[str]:
    """Every glued number a chapter's text shows, formatted."""
    return [text for texts in glued_texts_by_cell(path).values() for text in texts]


def gated_code_cell_ids(chapter) -> set[str]:
    """The code cells between a ``{solution-start}`` and its ``{solution-end}``."""
    inside, ids = False, set()
    for cell in chapter.cells:
        if cell.cell_type == "code" and inside:
            ids.add(cell.id)
        elif cell.cell_type == "markdown":
            for match in re.finditer(r"\{solution-(start|end)\}", cell.source):
                inside = match.group(1) == "start"
    return ids


# -- the committed student notebooks --------------------------------------------------------


def test_every_chapter_has_a_student_notebook_and_nothing_else():
    assert sorted(p.name for p in STUDENT.glob("*.ipynb")) == [p.name for p in CHAPTERS]


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.name)
def test_no_myst_only_syntax_is_left(chapter):
    text = markdown(nbformat.read(student(chapter), as_version=4))
    found = [match.group(0) for match in RAW_MYST.finditer(text)]
    assert found == [], f"{student(chapter).name}: MyST-only syntax {found[:5]}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.name)
def test_every_glued_number_is_written_in_as_the_site_formats_it(chapter):
    cells = {c.id: c.source for c in nbformat.read(student(chapter), as_version=4).cells}
    expected = glued_texts_by_cell(chapter)
    assert expected, f"{chapter.name} glues no number"
    for cell_id, texts in expected.items():
        missing = [text for text in texts if text not in cells.get(cell_id, "")]
        assert missing == [], f"{student(chapter).name} {cell_id}: glued numbers missing {missing}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.name)
def test_every_solution_is_folded(chapter):
    source = nbformat.read(chapter, as_version=4)
    notebook = nbformat.read(student(chapter), as_version=4)
    chapter_text = markdown(source)
    solutions = len(re.findall(r"\{solution(?:-start)?\}", chapter_text))
    assert solutions == chapter_text.count("{exercise}") >= 2
    opened = 0
    for cell in notebook.cells:
        if cell.cell_type != "markdown":
            continue
        # folds are balanced, and every solution title is the summary of one
        depth = 0
        for tag in re.findall(r"</?details>", cell.source):
            depth += 1 if tag == "<details>" else -1
            assert depth in (0, 1), f"{cell.id}: nested or unbalanced <details>"
        assert depth == 0, f"{cell.id}: unclosed <details>"
        titles = re.findall(r"Solution to Exercise [\d.]+", cell.source)
        summaries = re.findall(r"<details>\n<summary><strong>(Solution to Exercise [\d.]+)", cell.source)
        assert titles == summaries, f"{cell.id}: a solution title outside a fold's summary"
        starts = re.findall(r"<summary><strong>Solution to [^<]*</strong>", cell.source)
        opened += sum("(continued)" not in summary for summary in starts)
    assert opened == solutions, f"{notebook_name(chapter)}: {opened} folded solutions, {solutions} solutions"
    gated = gated_code_cell_ids(source)
    for cell in notebook.cells:
        if cell.cell_type == "code" and cell.id in gated:
            assert cell.metadata["jupyter"] == {"source_hidden": True, "outputs_hidden": True}, cell.id
            assert cell.metadata["cellView"] == "form", cell.id
        elif cell.cell_type == "code":
            assert not cell.metadata.get("jupyter", {}).get("outputs_hidden"), f"{cell.id} folded"


def notebook_name(chapter: Path) -> str:
    return f"notebooks/{chapter.name}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.name)
def test_code_cells_are_the_chapters_own_with_their_outputs(chapter):
    source = [c for c in nbformat.read(chapter, as_version=4).cells if c.cell_type == "code"]
    copied = [c for c in nbformat.read(student(chapter), as_version=4).cells if c.cell_type == "code"]
    assert [c.id for c in copied] == [c.id for c in source]
    for original, cell in zip(source, copied, strict=True):
        assert cell.source == original.source and cell.outputs == original.outputs, cell.id
        assert cell.execution_count == original.execution_count, cell.id
        added = {key: value for key, value in cell.metadata.items() if key not in original.metadata}
        assert set(added) <= {"jupyter", "cellView"}, f"{cell.id}: metadata {sorted(added)} added"
        assert all(cell.metadata[key] == original.metadata[key] for key in original.metadata), cell.id
    assert copied[0].source == first_cell_source(), "the setup cell must come first"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.name)
def test_header_cell_says_what_the_notebook_is_and_links_its_page(chapter):
    first = nbformat.read(student(chapter), as_version=4).cells[0]
    assert first.cell_type == "markdown" and "Student notebook" in first.source
    assert f"({site_base_url()}chapters/{chapter.stem}.html)" in first.source
    assert f"`chapters/{chapter.name}`" in first.source and "make book" in first.source


def test_site_address_is_the_github_pages_site_of_the_repository():
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    owner, repository = urlparse(config["repository"]["url"]).path.strip("/").split("/")
    assert site_base_url() == f"https://{owner}.github.io/{repository}/"


def _outside_fences(text: str) -> list[str]:
    lines, inside = [], False
    for line in text.split("\n"):
        if re.match(r"^\s*(```|~~~)", line):
            inside = not inside
        elif not inside:
            lines.append(line)
    return lines


def numbered_chapters():
    """The files of the table of contents' numbered parts, in order: chapter n is entry n − 1."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    return [entry["file"] for part in toc["parts"] if part.get("numbered") for entry in part["chapters"]]


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.name)
def test_headings_carry_the_site_numbers_and_math_renders_in_every_front_end(chapter):
    notebook = nbformat.read(student(chapter), as_version=4)
    number = numbered_chapters().index(f"chapters/{chapter.stem}") + 1  # the site's number
    for cell in notebook.cells[1:]:
        if cell.cell_type != "markdown":
            continue
        lines = _outside_fences(cell.source)
        for line in lines:
            if re.match(r"^#{1,6} ", line):
                assert re.match(rf"^#{{1,6}} {number}\.(\d+\.)* \S", line), f"unnumbered heading {line!r}"
            if line.startswith(">"):  # JupyterLab finds math before Markdown: no formula may span
                dollars = len(re.findall(r"(?<!\\)\$", re.sub(r"`[^`]*`", "", line)))
                assert dollars % 2 == 0, f"{cell.id}: math across lines of a block quote: {line!r}"
        fences = [index for index, line in enumerate(lines) if line.strip() == "$$"]
        for opening, closing in zip(fences[::2], fences[1::2], strict=True):  # blank lines around $$
            before = lines[opening - 1] if opening else ""
            after = lines[closing + 1] if closing + 1 < len(lines) else ""
            assert before.strip() == after.strip() == "", f"{cell.id}: $$ without blank lines around it"


# -- the converter, on its own --------------------------------------------------------------


class FakeResolver(Resolver):
    """Numbers and links of an imaginary chapter 4."""

    def role(self, name, content):
        return f"[{name}:{content}](https://site/)"

    def link(self, text, destination):
        return f"[{text or destination}](https://site/{destination})"

    def equation_number(self, label):
        return "(4.1)"

    def section_number(self, index):
        return f"4.{index}. " if index else "4. "

    def numbered_title(self, kind, index):
        return f"{'Exercise' if kind == 'exercise' else 'Theorem'} 4.{index + 1}"

    def exercise_title(self, label):
        return "Exercise 4.1"


def convert(*sources, glue=None):
    converter = MystToMarkdown(FakeResolver(), glue or {})
    return [converter.convert_cell(source) for source in sources], converter


@pytest.mark.parametrize(
    "source, message",
    [
        (":::{tab-set}\nText.\n:::", "no rule for the directive {tab-set}"),
        (":::{note}\nnever closed", "unclosed fence"),
        ("  :::{note}\n  Indented.\n  :::", "indented directive"),
        ("{glue:text}`nothing:.2f`", "nothing glued"),
        ("A {{ substitution }}.", "substitution"),
        ("A footnote[^1].", "footnote"),
        ("![a plot](plot.png)", "image from a local file"),
        ("$$\nnever closed", "unclosed $$"),
        (":::{solution-end}\n:::", "solution-end without solution-start"),
        (":::{admonition}\nNo title.\n:::", "without a title"),
        ("Term\n: its definition", "definition list"),
        ("\\begin{align}\na &= b", "unclosed"),
        ("$$\nx % a TeX comment\n$$", None),
    ],
)
def test_converter_refuses_what_it_has_no_rule_for(source, message):
    if message is None:  # allowed outside block quotes, where the formula keeps its lines
        convert(source)
        with pytest.raises(ConversionError, match="TeX comment"):
            convert(f":::{{note}}\n{source}\n:::")
        return
    with pytest.raises(ConversionError, match=re.escape(message)):
        convert(source)


def test_converter_writes_each_construct_as_plain_markdown():
    glue = {"x": {"text/plain": "0.123456"}, "n": {"text/plain": "7"}, "md": {"text/markdown": "*bold*"}}
    source = (
        "# Title\n\n(sec-a)=\n## Section\n\n% a comment\n+++\n"
        "Glued {glue:text}`x:.2e`, {glue:text}`n:d`, {glue}`x`, {glue:md}`md`; {doc}`02_sgd`, "
        "[text](#label) and a [URL](https://example.org).\n\n"
        ":::{prf:theorem} Name\n:label: thm-a\nIt holds: $a\n+ b$.\n\n$$\nx\n$$\n:::\n\n"
        ":::{margin}\nAside.\n:::\n\n:::{epigraph}\nQuoted.\n:::\n\n"
        "\\begin{align}\na &= b\n\\end{align}\n\n"
        "```{math}\n:label: eq-b\ny = 1\n```"
    )
    [[piece]], converter = convert(source, glue=glue)
    assert piece.text == (
        "# 4. Title\n\n## 4.1. Section\n\n"
        "Glued 1.23e-01, 7, 0.123456, *bold*; [doc:02_sgd](https://site/), "
        "[text](https://site/#label) and a [URL](https://example.org).\n\n"
        "> **Theorem 4.1 (Name)**\n>\n> It holds: $a + b$.\n>\n> $$ x $$\n\n"
        "> **Aside**\n>\n> Aside.\n\n> Quoted.\n\n"
        "$$\n\\begin{align}\na &= b\n\\end{align}\n$$\n\n"
        "$$\ny = 1 \\tag*{(4.1)}\n$$"
    )
    assert converter.headings == 2 and converter.counts == {"proof": 1}


def test_converter_refuses_a_role_sphinx_does_not_know():
    class Unknown(FakeResolver):
        def role(self, name, content):
            raise ConversionError(f"no role {{{name}}}")

    with pytest.raises(ConversionError, match="no role"):
        MystToMarkdown(Unknown(), {}).convert_cell("{kbd2}`x`")


def test_converter_keeps_code_and_math_as_written():
    source = "Code `{doc}` and\n\n```python\n{doc}`x` $a\nb$\n```\n\n$$\n% not a comment here\nx\n$$"
    [[piece]], _ = convert(source)
    assert "`{doc}`" in piece.text and "{doc}`x` $a\nb$" in piece.text
    assert "$$\n% not a comment here\nx\n$$" in piece.text


def test_a_gated_solution_spans_cells_and_ends_open_only_at_its_end():
    (first, second), converter = convert(
        "Before.\n\n:::{solution-start} ex-a\n:class: dropdown\n:::\n\nIdea.",
        "Check.\n\n:::{solution-end}\n:::\n\nAfter.",
    )
    assert [(p.text, p.solution, p.continued) for p in first] == [
        ("Before.", None, False),
        ("Idea.", "Solution to Exercise 4.1", False),
    ]
    assert [(p.text, p.solution, p.continued) for p in second] == [
        ("Check.", "Solution to Exercise 4.1", True),
        ("After.", None, False),
    ]
    converter.finish()
    _, open_converter = convert(":::{solution-start} ex-a\n:::")
    with pytest.raises(ConversionError, match="without solution-end"):
        open_converter.finish()


def test_student_notebook_folds_a_gated_solutions_code_and_tags_it_for_colab():
    chapter = nbformat.v4.new_notebook()
    chapter.cells = [
        nbformat.v4.new_markdown_cell(":::{exercise}\n:label: ex-a\nDo.\n:::\n:::{solution-start} ex-a\n:::"),
        nbformat.v4.new_code_cell("print(1)"),
        nbformat.v4.new_markdown_cell(":::{solution-end}\n:::"),
        nbformat.v4.new_code_cell("print(2)", metadata={"tags": ["hide-input"]}),
    ]
    result = student_notebook(chapter, FakeResolver(), "Header")
    assert [c.cell_type for c in result.cells] == ["markdown", "markdown", "code", "code"]
    assert "folded cell below" in result.cells[1].source
    assert result.cells[2].metadata == {
        "jupyter": {"source_hidden": True, "outputs_hidden": True},
        "cellView": "form",
    }
    assert result.cells[3].metadata["jupyter"] == {"source_hidden": True}
    nbformat.validate(result)


def test_tidy_leaves_code_blocks_alone():
    assert tidy("\n\na\n\n\n\nb\n```\nx\n\n\n\ny\n```\n\n") == "a\n\nb\n```\nx\n\n\n\ny\n```"


# -- every construct through Sphinx, on a small book ----------------------------------------


@pytest.fixture(scope="module")
def small_book(tmp_path_factory):
    folder = write_small_book(tmp_path_factory.mktemp("small") / "book")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "jupyter-book"), "build", str(folder), "--warningiserror",
         "--nitpick", "--keep-going"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    html = folder / "_build" / "html"
    notebooks = {
        name: nbformat.read(html / "notebooks" / f"{name}.ipynb", as_version=4)
        for name in ("01_basics", "02_more")
    }
    return html, notebooks


def test_small_book_every_construct_becomes_plain_markdown(small_book):
    html, notebooks = small_book
    basics, more = (markdown(notebooks[name]) for name in ("01_basics", "02_more"))
    page = f"{BASE_URL}chapters/02_more.html"
    expected_basics = [
        "# 1. Basics",
        "## 1.1. A first section",
        f"As Smith ([2020]({BASE_URL}bibliography.html#",  # cite:t, parentheses instead of brackets
        "others agree ([Doe *et al.*, 2021](",  # cite:p with two keys
        "The energy\n\n$$\nE = m c^2 \\tag*{(1.1)}\n$$\n\nis [(1.1)]",  # labelled equation, {eq}
        "$$\np = m v \\tag*{(1.2)}\n$$",  # the math directive
        f"[Figure 1.1]({BASE_URL}chapters/01_basics.html#fig-basics-dot) is a dot",  # numref
        "A sum: $\\sum_i x_i$, H<sub>2</sub>O.",  # math and sub roles
    ]
    expected_more = [
        "# 2. More\n\n> **Learning goals**\n>\n> Inline math over two lines, $a + b$, and display math:\n>\n"
        "> $$ x = 1 \\\\ y = 2 $$",  # admonition: a block quote, math on one line each
        "## 2.1. Results",
        "The value is 0.123 (7 runs, 25.0%)",  # glue:text with .3f, d, .1%
        f"[Plot 1.1]({BASE_URL}chapters/01_basics.html#fig-basics-dot) too",  # numref with a title
        f"Chapter [Basics]({BASE_URL}chapters/01_basics.html) has [A first section]"
        f"({BASE_URL}chapters/01_basics.html#sec-start)",  # doc, ref
        f"[the results]({page}#sec-results) or [Results]({page}#sec-results), "
        f"[a chapter]({BASE_URL}chapters/01_basics.html). See [the site](https://example.org/).",  # links
        "> **Theorem 2.1 (A claim on $x$)**\n>\n> Body with $y$.",
        "> **Proof.**\n>\n> Obvious.",
        f"By [Theorem 2.1]({page}#thm-claim).",
        "> **Note**\n>\n> A note.",
        "> **Warning**\n>\n> Careful.",
        "<details>\n<summary><strong>More detail</strong></summary>\n\nHidden at first.\n\n</details>",
        "<details>\n<summary><strong>Folded</strong></summary>\n\nAlso hidden.\n\n</details>",
        "## 2.2. Exercises\n\n> **Exercise 2.1**\n>\n> Do it.",
        "<summary><strong>Solution to Exercise 2.1</strong></summary>\n\nDone: $z = 1$.\n\n</details>",
        "> **Exercise 2.2 (Titled)**\n>\n> Compute it.",
        "<summary><strong>Solution to Exercise 2.2 (Titled)</strong></summary>\n\nFirst the idea.",
        "<strong>Solution to Exercise 2.2 (Titled) (continued)</strong></summary>\n\nThen the check.",
        f"After the exercises: [Exercise 2.1]({page}#ex-one).",
    ]
    for text, expected in [(basics, expected_basics), (more, expected_more)]:
        for snippet in expected:
            assert snippet in text, f"not found:\n{snippet}\n\nin:\n{text}"
    assert "comment" not in basics and "(sec-start)=" not in basics and "(sec-results)=" not in more
    code = [c for c in notebooks["02_more"].cells if c.cell_type == "code"]
    assert code[-1].metadata["jupyter"] == {"source_hidden": True, "outputs_hidden": True}
    # what the converter wrote is what the site shows
    site = (html / "chapters" / "02_more.html").read_text(encoding="utf-8")
    for shown in ["Exercise 2.1", "Exercise 2.2", "Theorem 2.1", "2.1. </span>Results", "Figure 1.1"]:
        assert shown in site, shown
    assert "(1.1)" in (html / "chapters" / "01_basics.html").read_text(encoding="utf-8")


def test_small_book_buttons_open_the_student_notebook(small_book):
    html, _ = small_book
    links = re.findall(r'href="([^"]+)"', (html / "chapters" / "02_more.html").read_text(encoding="utf-8"))
    colab = "https://colab.research.google.com/github/example/small-book/blob/main/notebooks/02_more.ipynb"
    assert colab in links
    assert "https://mybinder.org/v2/gh/example/small-book/main?urlpath=tree/notebooks/02_more.ipynb" in links
    assert "../notebooks/02_more.ipynb" in links
    assert not [link for link in links if link.endswith("chapters/02_more.ipynb")]


# -- the course's own build (the test suite builds the site once) ---------------------------


def test_committed_student_notebooks_are_what_the_build_makes_now(built_site):
    _, html = built_site  # (a build that only warned still writes them: test_book.py fails on warnings)
    assert (html / "notebooks").is_dir(), "the site build wrote no student notebooks: see test_book.py"
    built = sorted(p.name for p in (html / "notebooks").glob("*.ipynb"))
    assert built == sorted(p.name for p in STUDENT.glob("*.ipynb"))
    stale = [n for n in built if (html / "notebooks" / n).read_bytes() != (STUDENT / n).read_bytes()]
    assert stale == [], f"out of date (run `make book` and commit notebooks/): {stale}"


class _Anchors(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids = set()

    def handle_starttag(self, tag, attrs):
        self.ids.update(value for name, value in attrs if name == "id")


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.name)
def test_numbers_titles_and_links_are_the_sites(built_site, chapter):
    _, html = built_site
    text = markdown(nbformat.read(html / "notebooks" / chapter.name, as_version=4))
    page = (html / "chapters" / f"{chapter.stem}.html").read_text(encoding="utf-8")
    kinds = "Figure|Exercise|Theorem|Proposition|Lemma|Corollary|Definition|Table"
    titles = set(re.findall(rf"\b(?:{kinds}) \d+\.\d+", text))
    missing = [title for title in titles if title not in page]
    assert missing == [], f"{chapter.name}: not numbered so on the site: {missing}"
    headings = re.findall(r"^#{1,6} (\d+(?:\.\d+)*\.) (.*)$", text, re.MULTILINE)
    for number, _ in headings:
        assert f'<span class="section-number">{number} </span>' in page, number
    anchors: dict[str, set[str]] = {}
    for url in re.findall(r"\]\((https?://[^)\s]+)\)", text):
        if not url.startswith(site_base_url()):
            continue
        path, _, anchor = url.removeprefix(site_base_url()).partition("#")
        target = html / path
        assert target.is_file(), f"{chapter.name}: link to a page the site does not have: {url}"
        if anchor:
            if path not in anchors:
                parser = _Anchors()
                parser.feed(target.read_text(encoding="utf-8"))
                anchors[path] = parser.ids
            assert anchor in anchors[path], f"{chapter.name}: link to a missing anchor: {url}"


def test_student_notebooks_are_the_size_of_their_chapters():
    chapters = {p.name: p.stat().st_size for p in CHAPTERS}
    for path in STUDENT.glob("*.ipynb"):  # the chapter's outputs and text, and a header cell
        size = path.stat().st_size
        assert size < 1.02 * chapters[path.name] + 10_000, f"{path.name}: {size} B ({chapters[path.name]})"
