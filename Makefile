# Two commands: `make test` and `make book`. Both create .venv and install on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export INR_PROFILE ?= quick
export PYTHONHASHSEED ?= 0
# real CAVE scenes kept outside INR_DATA (the development copy next to the checkout, when present)
export INR_CAVE ?= $(firstword $(wildcard $(abspath ../shared/data/cave)))
# one torch thread: reproducible numbers, and no spin-waiting when the cores are shared
export OMP_NUM_THREADS ?= 1
# notebooks run on this checkout's .venv kernel, whatever other kernels the user has
export JUPYTER_PATH := $(CURDIR)/$(VENV)/share/jupyter

.PHONY: test book book-publish install clean clean-book unit assignment teacher-kit slides lint torch

# torch: the CPU build from PyTorch's wheel index when it is reachable (the default package
# index gives the CUDA build on Linux, several GB); offline, the package index (one-line note).
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_PIN := $(shell grep -E '^torch==' requirements.txt)
PIP_INSTALL ?= $(PY) -m pip install --quiet

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(MAKE) --no-print-directory torch
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

install: $(STAMP)

torch:
	@if $(PY) -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + '/torch/', timeout=10)" "$(TORCH_INDEX)" >/dev/null 2>&1; then \
		$(PIP_INSTALL) --index-url $(TORCH_INDEX) $(TORCH_PIN); \
	else \
		echo "note: $(TORCH_INDEX) is not reachable; installing $(TORCH_PIN) from the default package index (on Linux that may be the larger CUDA build)"; \
		$(PIP_INSTALL) $(TORCH_PIN); \
	fi

## make lint: static checks (ruff with the rules in pyproject.toml, mypy over inr_lib)
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

## make test: unit tests + every book chapter executed under nbval (quick profile).
## Chapters keep their training runs in runs/book; `make test` starts them afresh and a
## following `make book` reuses the finished runs instead of training twice.
test: $(STAMP) lint
	$(PY) tools/nbtool.py sync-install
	rm -rf runs/book
	$(PY) -m pytest tests book --nbval-lax --nbval-current-env -p no:cacheprovider

## make unit: unit tests only
unit: $(STAMP)
	$(PY) -m pytest tests -p no:cacheprovider

## make book: build the HTML book offline (chapters executed in the quick profile). Both targets
## first write the chapters' Colab install cells and README's pip line from _config.yml's
## `repository:` setting (tools/nbtool.py sync-install).
book: $(STAMP)
	$(PY) tools/nbtool.py sync-install
	rm -rf _build/.doctrees
	$(VENV)/bin/jupyter-book build . --warningiserror --keep-going --builder html
	$(PY) tools/check_html.py _build/html
	@echo "Book built: file://$(CURDIR)/_build/html/index.html"

## make book-publish: the book as published (.github/workflows/book.yml): `make book` with every
## chapter recording the data it used (build manifest in _build/manifest), then one line naming
## the chapters that fell back to synthetic data, if any (fails). Real CAVE: $INR_DATA/cave
## (python tools/fetch_data.py puts it there).
book-publish: $(STAMP)
	rm -rf _build/manifest
	INR_BOOK_MANIFEST=$(CURDIR)/_build/manifest $(MAKE) book
	$(PY) tools/check_publish.py _build/manifest

clean-book:
	rm -rf _build

clean: clean-book
	rm -rf $(VENV) runs/book

## Course module (chapter 12). Outputs go to build/course (git-ignored, not part of the HTML book).
## make assignment COHORT_SEED='a private pass phrase': the cohort's student notebook + autograder.zip
## make teacher-kit COHORT_SEED=...: the same plus solutions, rubric answers, hidden tests, in one zip
## (PREVIOUS_COHORT_SEEDS=a,b refuses a seed whose layout an earlier cohort had). make slides: the decks.
COHORT_SEED ?=
PREVIOUS_COHORT_SEEDS ?=
assignment: $(STAMP)
	@test -n "$(COHORT_SEED)" || { echo "make assignment: set COHORT_SEED='a private pass phrase' (see chapter 12)"; exit 2; }
	@COHORT_SEED="$(COHORT_SEED)" PREVIOUS_COHORT_SEEDS="$(PREVIOUS_COHORT_SEEDS)" $(PY) -m course.build assignment

teacher-kit: $(STAMP)
	@test -n "$(COHORT_SEED)" || { echo "make teacher-kit: set COHORT_SEED='a private pass phrase' (see chapter 12)"; exit 2; }
	@COHORT_SEED="$(COHORT_SEED)" PREVIOUS_COHORT_SEEDS="$(PREVIOUS_COHORT_SEEDS)" $(PY) -m course.build teacher-kit

slides: $(STAMP)
	$(PY) -m course.build slides
