# Two commands a new user needs (see README.md):
#   make app   install into .venv and serve the Voila apps on the demo data
#   make test  install the test extras (and Debian's chromium) and run every test
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8866
DATA ?=
APP_LANG ?=
TOKEN ?=
# Two workers (one per core on CI), a test file per worker at a time: a module's servers and
# browser start once. `make test PYTEST_ARGS=-n0` runs in one process.
PYTEST_ARGS ?= -n auto --dist loadfile

# Jupyter, IPython and matplotlib state stays inside the project, not in $HOME.
STATE := $(CURDIR)/.state
export JUPYTER_CONFIG_DIR := $(STATE)/jupyter/config
export JUPYTER_DATA_DIR := $(STATE)/jupyter/data
export JUPYTER_RUNTIME_DIR := $(STATE)/jupyter/runtime
export IPYTHONDIR := $(STATE)/ipython
export MPLCONFIGDIR := $(STATE)/matplotlib
export JUPYTER_PLATFORM_DIRS := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PYTHONHASHSEED := 0

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: app lab test install install-test browser screenshots lock bench demo-data clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python requirements.lock pyproject.toml
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed requirements-test.lock
	$(BIN)/pip install --quiet -r requirements-test.lock
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test browser

# Debian's chromium and its driver, for the browser tests (nothing is downloaded by the test tools),
# and a Chinese font, so that pages (and their screenshots) in Chinese show characters, not boxes.
browser:
	@if ! command -v chromium >/dev/null || ! fc-list 2>/dev/null | grep -qi wenquanyi; then \
	  echo "Installing Debian's chromium and a Chinese font for the browser tests"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver fonts-wqy-zenhei >/dev/null; \
	fi

# make app [DATA=path/to/your/data] [APP_LANG=zh] [HOST=0.0.0.0 TOKEN=secret] [PORT=8866]
app: install
	mkdir -p $(STATE)
	$(BIN)/salesplan serve --host $(HOST) --port $(PORT) $(if $(DATA),--data "$(DATA)") \
	  $(if $(APP_LANG),--lang $(APP_LANG)) $(if $(TOKEN),--token "$(TOKEN)")

# JupyterLab on the notebooks, with the same project-local Jupyter state as the apps.
lab: install
	mkdir -p $(STATE)
	$(BIN)/jupyter lab --ip $(HOST) --port 8888 --notebook-dir notebooks

test: install-test
	mkdir -p $(STATE)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The README's pictures: every app as the browser tests see it, copied to docs/screenshots.
screenshots: install-test
	mkdir -p $(STATE) docs/screenshots
	$(BIN)/python -m pytest tests/test_browser.py -q -k "renders_without_error or overview_app"
	for f in $(STATE)/screenshots/0[0-6]_*-top.png; do case "$$f" in *-zh-top.png) ;; *) cp "$$f" docs/screenshots/ ;; esac; done

# The alternatives we compare with live in venvs of their own: lifetimes needs
# numpy<2/pandas<2.2 and statsforecast pins pandas<3, which our package does not.
.venv-bench/.installed: benchmarks/requirements-lifetimes.lock
	$(PYTHON) -m venv .venv-bench
	.venv-bench/bin/pip install --quiet -r $<
	touch $@

.venv-statsforecast/.installed: benchmarks/requirements-statsforecast.lock
	$(PYTHON) -m venv .venv-statsforecast
	.venv-statsforecast/bin/pip install --quiet -r $<
	touch $@

include benchmarks/Makefile.polars

bench: install-test .venv-bench/.installed .venv-statsforecast/.installed
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

demo-data: install
	$(BIN)/python -m salesplan.datasets --out data/demo

# Re-pin the locks from a fresh resolve (maintainers only).
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet --upgrade pip
	.venv-lock/bin/pip install --quiet -e .
	.venv-lock/bin/pip freeze --exclude-editable | sort > requirements.lock
	.venv-lock/bin/pip install --quiet -e '.[test]'
	.venv-lock/bin/pip freeze --exclude-editable | sort | comm -13 requirements.lock - > requirements-test.lock
	rm -rf .venv-lock

clean:
	rm -rf $(VENV) $(STATE) .pytest_cache .hypothesis
