"""Instructor tools for the chapter notebooks: the shared first cell, and re-execution.

    python tools/notebooks.py [NOTEBOOK ...]   # re-execute in place (all chapters by default)

Every chapter's first code cell is the same *setup cell* (``first_cell_source()``): it makes
``nqm_lib`` importable wherever the notebook runs — already installed locally and on Binder,
installed from the course repository on Colab. Its text lives only here; the tool stamps
it into each chapter before running, and a test checks that every chapter carries it.

Execution is deterministic (seeded simulations, no timing metadata, no widget state), so
running it twice on unchanged sources leaves ``git diff`` empty.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
import yaml
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = ROOT / "chapters"
SETUP_TAG = "setup"
CELL_TIMEOUT_SECONDS = 120
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def repository_url() -> str:
    """The course repository URL, configured once in ``_config.yml`` (``repository.url``)."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    return str(config["repository"]["url"]).rstrip("/")


def first_cell_source() -> str:
    """Source of the setup cell that opens every chapter."""
    return (
        "# Setup: make the course library `nqm_lib` importable. Locally and on Binder it is\n"
        "# already installed; on Colab this installs it from the course repository (once).\n"
        "import importlib.util\n"
        "import os\n"
        "\n"
        'if importlib.util.find_spec("nqm_lib") is None:\n'
        f'    source = os.environ.get("NQM_LIB_SOURCE", "git+{repository_url()}")\n'
        "    %pip install --quiet --no-deps {source}"
    )


def chapter_notebooks() -> list[Path]:
    """All chapter notebooks, in file-name order."""
    return sorted(CHAPTERS.glob("*.ipynb"))


def stamp_first_cell(notebook: nbformat.NotebookNode) -> None:
    """Make the notebook's first code cell the shared setup cell (inserting it if needed)."""
    source = first_cell_source()
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    if code_cells and SETUP_TAG in code_cells[0].metadata.get("tags", []):
        code_cells[0].source = source
        return
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": [SETUP_TAG, "hide-input"]})
    position = notebook.cells.index(code_cells[0]) if code_cells else len(notebook.cells)
    notebook.cells.insert(position, cell)


def _merge_streams(outputs: list) -> list:
    """Join consecutive stdout (or stderr) chunks: how the kernel splits them depends on timing."""
    merged: list = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if (
            output.output_type == "stream"
            and previous is not None
            and previous.output_type == "stream"
            and previous.name == output.name
        ):
            previous.text += output.text
        else:
            merged.append(output)
    return merged


def _normalise(notebook: nbformat.NotebookNode) -> None:
    """Drop volatile metadata so that re-execution of unchanged sources changes nothing."""
    notebook.metadata.pop("widgets", None)
    notebook.metadata["kernelspec"] = {
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
        "name": "python3",
    }
    for index, cell in enumerate(notebook.cells):
        cell["id"] = f"cell-{index:03d}"
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = _merge_streams(cell.outputs)
            for number, output in enumerate(cell.outputs):
                output.pop("transient", None)
                view = output.get("data", {}).get(WIDGET_VIEW)
                if view is not None:  # random per run; no widget state is saved anyway
                    view["model_id"] = f"{cell['id']}-output-{number}"


def execute(path: Path) -> float:
    """Re-execute one notebook in a fresh kernel, save it in place; return the seconds taken."""
    notebook = nbformat.read(path, as_version=4)
    stamp_first_cell(notebook)
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_SECONDS,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        record_timing=False,
        store_widget_state=False,
    )
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    _normalise(notebook)
    nbformat.write(notebook, path)
    return elapsed


def main(argv: list[str] | None = None) -> int:
    """Re-execute the notebooks named on the command line (default: every chapter)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every chapter")
    args = parser.parse_args(argv)
    paths = [p.resolve() for p in args.notebooks] or chapter_notebooks()
    total = 0.0
    for path in paths:
        seconds = execute(path)
        total += seconds
        print(f"executed {path.relative_to(ROOT)} in {seconds:5.1f} s")
    print(f"total    {total:5.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
