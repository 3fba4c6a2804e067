# The two commands of the README:  make book  |  make test
# Each one sets up its own environment first (.venv in this folder, exact pinned versions).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
READY  := $(VENV)/.ready

.PHONY: book test check execute serve bench experiment lint clean

SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Set-up: a virtual environment with nqm_lib (editable) and every pinned dependency, and
# Debian's chromium for the browser tests (Playwright drives it; it never downloads a browser).
$(READY): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }
	@$(PYTHON) -m venv $(VENV) || { echo "Creating $(VENV) failed: on Debian/Ubuntu install python3-venv (apt-get install python3-venv)."; exit 1; }
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[book,test,torch]"
	@touch $@

## make book: build the HTML site into _build/html (the committed notebook outputs are shown as they are),
## and write the student notebooks (plain Jupyter Markdown, for Colab and Binder) into notebooks/
book: $(READY)
	$(BIN)/python tools/book.py

## make test: the whole test suite (unit tests, nbval over every chapter, the site build), in
## TEST_WORKERS parallel pytest-xdist workers (conftest.py groups and orders the work for them)
TEST_WORKERS ?= 2
test: $(READY)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --durations=15

## make check: after editing a chapter, every check of it (re-execution, nbval here and on another
## machine's kernels, structure, glue, the site page in a browser): NB=chapters/03_momentum.ipynb,
## or by default the chapters changed since the last commit
check: $(READY)
	$(BIN)/python tools/check_chapter.py $(NB)

## make execute: re-execute chapter notebooks in place, saving outputs (NB=chapters/02_sgd.ipynb for one)
execute: $(READY)
	$(BIN)/python tools/notebooks.py $(NB)

## make serve: serve the built site on http://localhost:8000
serve: book
	$(BIN)/python -m http.server --directory _build/html --bind 127.0.0.1 8000

## make bench: time every chapter, widget and nqm_lib kernel; write benchmarks/results.json
bench: $(READY)
	$(BIN)/python benchmarks/run.py

## make experiment: chapter 10's sweeps from scratch (two processes, resumable; see README); writes nqm_lib/data/*.json
experiment: $(READY)
	$(BIN)/python experiments/real_network.py

lint: $(READY)
	$(BIN)/ruff check .

clean:
	rm -rf _build .pytest_cache
