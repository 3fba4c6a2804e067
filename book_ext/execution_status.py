"""Sphinx extension: the ``{execution-status}`` directive, a table of every chapter's status.

For each chapter notebook listed in the table of contents it shows the number of code cells,
whether all of them were executed top to bottom, the number of error outputs, and the
median execution time in a fresh kernel measured by ``make bench`` (from
``benchmarks/results.json``, with the machine and date of the measurement). The build does
not execute notebooks, so these are facts about the committed notebooks and the last
benchmark, and the page says so.
"""

import json
from pathlib import Path

import nbformat
from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

HEADER = ("chapter", "code cells", "executed in order", "error outputs", "execution time (s)")


def _chapter_status(path: Path) -> tuple[int, bool, int]:
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code" and cell.source.strip()]
    counts = [cell.execution_count for cell in code]
    in_order = None not in counts and counts == list(range(1, len(counts) + 1))
    errors = sum(output.output_type == "error" for cell in code for output in cell.outputs)
    return len(code), in_order, errors


def _row(cells: list[nodes.Node]) -> nodes.row:
    row = nodes.row()
    for content in cells:
        entry = nodes.entry()
        entry += content if isinstance(content, nodes.paragraph) else nodes.paragraph("", "", content)
        row += entry
    return row


class ExecutionStatus(SphinxDirective):
    """Render the chapter status table."""

    def run(self) -> list[nodes.Node]:
        """Build the table from the committed notebooks and benchmarks/results.json."""
        root = Path(self.env.srcdir)
        results_file = root / "benchmarks" / "results.json"
        self.env.note_dependency(str(results_file))
        results = json.loads(results_file.read_text(encoding="utf-8")) if results_file.exists() else {}
        chapters = sorted(name for name in self.env.found_docs if name.startswith("chapters/"))

        table = nodes.table()
        group = nodes.tgroup(cols=len(HEADER))
        table += group
        group.extend(nodes.colspec(colwidth=1) for _ in HEADER)
        head = nodes.thead()
        head += _row([nodes.Text(text) for text in HEADER])
        body = nodes.tbody()
        for name in chapters:
            self.env.note_dependency(str(root / f"{name}.ipynb"))
            cells, in_order, errors = _chapter_status(root / f"{name}.ipynb")
            seconds = results.get(f"chapter_{Path(name).name}_seconds_median")
            link = addnodes.pending_xref(
                "",
                nodes.inline(text=Path(name).name),
                refdomain="std",
                reftype="doc",
                reftarget=f"/{name}",
                refexplicit=False,
            )
            body += _row(
                [
                    link,
                    nodes.Text(str(cells)),
                    nodes.Text("yes" if in_order else "NO"),
                    nodes.Text(str(errors)),
                    nodes.Text(f"{seconds:.1f}" if seconds is not None else "not measured"),
                ]
            )
        group += head
        group += body

        machine = results.get("machine", {})
        total = results.get("book_seconds_median")
        where = f"{machine.get('cores', '?')} cores ({machine.get('cpu', '?')})"
        summary = (
            f"Whole book: {total:.1f} s (median of the runs of make bench), measured "
            f"{machine.get('measured', '?')} on {where}."
            if total is not None
            else "Execution times have not been measured yet: run make bench."
        )
        return [table, nodes.paragraph(text=summary)]


def setup(app: Sphinx) -> dict[str, object]:
    """Register the directive with Sphinx."""
    app.add_directive("execution-status", ExecutionStatus)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
