# labkit: two commands on a fresh machine.
#   make demo   set up, then run the whole pipeline once and print its report
#   make test   set up (system packages too, when root on Debian/Ubuntu), then every test
#   make lab    set up, then open JupyterLab on the notebooks
#   make student  student copies of the lessons (no solutions, no outputs) in student/
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.labkit-installed
OUT    ?= labkit-demo

.PHONY: setup system-deps demo test lab student constraints clean

setup: $(STAMP)

$(STAMP): requirements.txt constraints.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

system-deps:
	@bash scripts/system-deps.sh

demo: setup
	$(BIN)/labkit demo --out $(OUT) --json

test: setup system-deps
	$(BIN)/python -m pytest -q -n auto --dist loadfile tests notebooks --nbval

lab: setup
	$(BIN)/jupyter lab notebooks/

student: setup
	$(BIN)/labkit lessons student notebooks -o student

# After upgrading a package: record the versions tested together.
constraints: setup
	{ sed -n '1,2p' constraints.txt; $(BIN)/python -m pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

clean:
	rm -rf $(OUT) build .pytest_cache
