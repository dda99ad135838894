# labkit: two commands on a fresh machine.
#   make demo   set up, then run the whole pipeline once and print its report
#   make test   set up (system packages too, when root on Debian/Ubuntu), then every test; the lessons
#               twice: on this CPU as it is, and with the kernels most laptops run (AVX2 / Haswell)
#   make lab    set up, then open JupyterLab on the notebooks (LAB_ARGS="--port 9999 --no-browser" ...)
#   make student  student copies of the lessons (no solutions, no outputs) in student/
#   make book   the lessons as stored (not run) and the instructor kit as a static site: build/book/index.html
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.labkit-installed
OUT    ?= labkit-demo
BOOK   ?= build/book
# The CPU profile most students' laptops compute in: oneDNN held to AVX2, OpenBLAS to Haswell kernels.
# Float training gives other weights there; the lessons must pass in it (README, "Writing a lesson").
AVX2   := ONEDNN_MAX_CPU_ISA=AVX2 OPENBLAS_CORETYPE=Haswell
# JupyterLab refuses to start as root (a container, WSL, a new VM) unless told that it is meant.
LAB_ARGS ?=
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: setup system-deps demo-deps demo test test-lessons-avx2 lab student book constraints clean

setup: $(STAMP)

$(STAMP): requirements.txt constraints.txt pyproject.toml jupyter/overrides.json
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@# the kit's JupyterLab settings: no "get notified about Jupyter news?" toast, no update checks (offline)
	mkdir -p $(VENV)/share/jupyter/lab/settings
	cp jupyter/overrides.json $(VENV)/share/jupyter/lab/settings/overrides.json
	@touch $(STAMP)

system-deps:
	@bash scripts/system-deps.sh

# Root on Debian/Ubuntu: installs the ARM compiler and QEMU, so the first demo shows the board's CPU too;
# otherwise it says what to install and the demo runs the host rung.
demo-deps:
	@bash scripts/system-deps.sh demo

demo: setup demo-deps
	$(BIN)/labkit demo --out $(OUT) --json

test: setup system-deps
	$(BIN)/python -m pytest -q -n auto --dist loadfile tests notebooks --nbval
	@$(MAKE) --no-print-directory test-lessons-avx2

test-lessons-avx2: setup
	$(AVX2) $(BIN)/python -m pytest -q -n auto --dist loadfile -p no:cacheprovider --nbval notebooks

lab: setup
	$(BIN)/jupyter lab $(ROOT_FLAG) $(LAB_ARGS) notebooks/

student: setup
	$(BIN)/labkit lessons student notebooks -o student

# Offline: rendered from the stored outputs with Sphinx + MyST-NB, MathJax copied in, no CDN.
book: setup
	$(BIN)/labkit lessons book notebooks -o $(BOOK) --instructor instructor

# After upgrading a package: record the versions tested together.
constraints: setup
	{ sed -n '1,2p' constraints.txt; $(BIN)/python -m pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

clean:
	rm -rf $(OUT) build .pytest_cache
