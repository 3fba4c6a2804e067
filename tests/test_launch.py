"""Chapters run where students run them: Binder's pinned environment and Colab's first cell.

Each chapter page's launch buttons (Colab, Binder) and its ``.ipynb`` download hand the reader
the chapter's *student notebook* (``notebooks/``, plain Jupyter Markdown: see
``tests/test_student_notebooks.py``), not the MyST source.

The Colab test plays Colab: a fresh virtual environment with the chapters' runtime packages
but without nqm_lib. Executing a chapter there must install nqm_lib through the shared setup
cell (from this checkout, standing in for the repository URL via NQM_LIB_SOURCE) and then
run the whole chapter without error.
"""

import re
import subprocess
import venv
from pathlib import Path
from urllib.parse import urljoin

import nbformat
import pytest
from nbclient import NotebookClient

from tools.notebooks import CELL_TIMEOUT_SECONDS, chapter_notebooks, repository_url

ROOT = Path(__file__).resolve().parent.parent
RUNTIME_PACKAGES = ["numpy", "matplotlib", "ipywidgets", "ipykernel"]


def pins(path):
    pattern = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)", re.MULTILINE)
    return {name.lower(): version for name, version in pattern.findall(path.read_text(encoding="utf-8"))}


def test_binder_pins_match_the_tested_versions():
    binder, tested = pins(ROOT / "binder" / "requirements.txt"), pins(ROOT / "constraints.txt")
    assert binder, "binder/requirements.txt pins nothing"
    for name, version in binder.items():
        assert tested[name] == version.removesuffix("+cpu"), f"{name}: Binder {version}, tests {tested[name]}"


def test_binder_installs_the_library_and_a_cpu_only_torch():
    requirements = (ROOT / "binder" / "requirements.txt").read_text(encoding="utf-8")
    assert "torch==2.13.0+cpu" in requirements and "whl/cpu" in requirements
    assert "pip install --no-deps" in (ROOT / "binder" / "postBuild").read_text(encoding="utf-8")


@pytest.mark.parametrize("chapter", chapter_notebooks(), ids=lambda p: p.name)
def test_launch_and_download_buttons_hand_out_the_student_notebook(built_site, chapter):
    _, html = built_site  # (whether it built without warnings is test_book.py's concern)
    page = html / "chapters" / f"{chapter.stem}.html"
    links = re.findall(r'href="([^"]+)"', page.read_text(encoding="utf-8"))
    student = f"notebooks/{chapter.name}"
    repository = repository_url().removeprefix("https://github.com/")
    assert f"https://colab.research.google.com/github/{repository}/blob/main/{student}" in links
    assert f"https://mybinder.org/v2/gh/{repository}/main?urlpath=tree/{student}" in links
    downloads = [link for link in links if link.endswith(".ipynb") and "://" not in link]
    assert downloads == [f"../{student}"], f"{page.name}: .ipynb downloads {downloads}"
    served = Path(urljoin(f"{html}/chapters/", downloads[0]))
    assert served.read_bytes() == (ROOT / student).read_bytes(), "the download is not the committed notebook"
    assert not [link for link in links if link.endswith(f"chapters/{chapter.name}")], (
        "a button opens the source"
    )


def test_setup_cell_installs_from_the_configured_repository():
    first_cell = nbformat.read(chapter_notebooks()[0], as_version=4).cells[1].source
    assert f"git+{repository_url()}" in first_cell


@pytest.fixture(scope="module")
def colab_like_kernel(tmp_path_factory):
    """A fresh venv with the runtime packages but no nqm_lib, registered as a kernel."""
    env_dir = tmp_path_factory.mktemp("colab") / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-compile",  # byte-compile only what the chapter imports, when it imports it
            "-c",
            str(ROOT / "constraints.txt"),
            *RUNTIME_PACKAGES,
        ],
        check=True,
        timeout=900,
    )
    check = subprocess.run([str(python), "-c", "import nqm_lib"], capture_output=True, cwd=env_dir)
    assert check.returncode != 0, "the fresh environment must not have nqm_lib yet"
    subprocess.run(
        [str(python), "-m", "ipykernel", "install", "--prefix", str(env_dir), "--name", "colab-like"],
        check=True,
        capture_output=True,
    )
    return env_dir


def test_first_cell_installs_nqm_lib_and_the_chapter_then_runs(colab_like_kernel, tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_PATH", str(colab_like_kernel / "share" / "jupyter"))
    monkeypatch.setenv("NQM_LIB_SOURCE", str(ROOT))
    chapter = chapter_notebooks()[0]
    notebook = nbformat.read(chapter, as_version=4)
    notebook.cells.append(
        nbformat.v4.new_code_cell("import nqm_lib, sys\nprint(nqm_lib.__file__.startswith(sys.prefix))")
    )
    client = NotebookClient(
        notebook,
        kernel_name="colab-like",
        timeout=CELL_TIMEOUT_SECONDS * 5,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError if any cell fails
    assert notebook.cells[-1].outputs[0].text.strip() == "True", "nqm_lib was not installed into the venv"
