# emlab: two commands on a fresh machine with python3 and pip.
#   make book   set up .venv, build the book with every chapter executed
#   make test   set up .venv, run the tests (which also execute every chapter)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check
CONSTRAINTS := requirements/constraints.txt
export MPLBACKEND := Agg

.PHONY: help test book book-check lab bench demo clean distclean constraints

help:
	@echo "make book   - set up $(VENV) and build the book (every chapter executed)"
	@echo "make test   - set up $(VENV) and run the tests, book chapters included"
	@echo "make book-check - make book, then open every page in headless Chromium and fail on content cut off at the right edge"
	@echo "make lab    - set up $(VENV) with JupyterLab and jupytext, and open the chapters"
	@echo "make bench  - emlab against scikit-learn, hmmlearn, Dask in-process and Spark, side by side (about 25 min; writes benchmarks/results/local/, see benchmarks/README.md)"
	@echo "make demo   - k-means versus EM on the two classic samples (writes two_samples.png)"
	@echo "make clean  - remove the built book, caches and Numba's compiled kernels"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet "pip==25.3"

$(VENV)/.dev.stamp: $(BIN)/python pyproject.toml $(CONSTRAINTS)
	$(PIP) install --quiet -c $(CONSTRAINTS) -e ".[dev]"
	@touch $@

$(VENV)/.book.stamp: $(BIN)/python pyproject.toml $(CONSTRAINTS)
	$(PIP) install --quiet -c $(CONSTRAINTS) -e ".[book]"
	@touch $@

$(VENV)/.lab.stamp: $(BIN)/python pyproject.toml $(CONSTRAINTS)
	$(PIP) install --quiet -c $(CONSTRAINTS) -e ".[lab]"
	@touch $@

test: $(VENV)/.dev.stamp
	$(BIN)/python -m pytest

# --all: Sphinx would otherwise re-execute only the chapters whose text changed, and a
# change to emlab alone would re-test nothing.
book: $(VENV)/.book.stamp
	$(BIN)/jupyter-book build book --all -W -n --keep-going
	@echo
	@echo "Book built: $(CURDIR)/book/_build/html/index.html"

# Every built page in headless Chromium at two widths: fails on content cut off at the right
# edge of the column (skipped, with a message, where no Chromium is installed).
book-check: book
	$(BIN)/python .ci/book_layout.py book/_build/html

# Chapters are MyST markdown: in JupyterLab, right-click one and "Open With > Jupytext Notebook".
lab: $(VENV)/.lab.stamp
	$(BIN)/jupyter lab --notebook-dir=book $(if $(filter 0,$(shell id -u)),--allow-root)

bench: $(VENV)/.dev.stamp
	$(BIN)/python -m benchmarks
	$(BIN)/python -m benchmarks.busy
	$(BIN)/python -m benchmarks.precision

demo: $(VENV)/.dev.stamp
	$(BIN)/emlab demo --data sample --out two_samples.png
	$(BIN)/emlab demo --data iris

clean:
	rm -rf book/_build .pytest_cache
	find emlab tests -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)

# Refresh the pins from the current .venv (after a deliberate upgrade).
constraints:
	( echo "# Exact versions every install uses (pip install -c requirements/constraints.txt ...)."; \
	  echo "# Regenerate with: make constraints"; \
	  $(PIP) freeze --exclude-editable | grep -v '^-e' ) > $(CONSTRAINTS)
