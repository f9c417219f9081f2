# Two commands for a fresh machine:
#   make sweep   set up, then run the example sweep on the embedded defaults
#   make test    set up (including headless Chromium), then ruff, mypy and the whole test suite
VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin

.PHONY: install system-deps sweep test bench clean

$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	# The CPU wheel of torch lies on this kind of machine's disk; asking for plain `torch`
	# would download a multi-GB CUDA build. pyproject.toml keeps a permissive torch>=2.2.
	$(BIN)/pip install torch==2.13.0
	# constraints.txt holds the exact versions CI passed with, so a green CI means the
	# versions installed here were tested; pyproject.toml keeps ranges for other users.
	$(BIN)/pip install -c constraints.txt -e '.[test]'
	touch $@

install: $(BIN)/.installed

# Debian's Chromium drives the MLflow UI and report tests (Playwright's own browser
# download does not work offline); tmux is the real 80x24 terminal of tests/cli/test_terminal.py.
system-deps:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/tmux ]; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver tmux; \
	fi

sweep: install
	$(BIN)/sweep run sweeps/examples/digits_mlp.yaml --overwrite

# Lint and types first: a failure there stops before the long suite. Then two pytest
# processes, a test file to one process at a time (its module fixtures, one Ray or cluster,
# built once), the slowest files first (tests/file_durations.py), so that no 3-minute file
# starts last. tests/ports.py keeps their ports apart. Four processes drove the load
# average on 2 cores to 25-27, where Ray's node start and the distributed tests time out.
test: install system-deps
	$(BIN)/ruff check sweeps trainables tests benchmarks
	$(BIN)/ruff format --check sweeps trainables tests benchmarks
	$(BIN)/mypy sweeps trainables
	# Bytecode once, here: with PYTHONDONTWRITEBYTECODE set (as on CI's machines) each of the
	# suite's few hundred Python processes (drivers, Ray workers) compiled the package again.
	$(BIN)/python -m compileall -q sweeps trainables tests benchmarks
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder

bench: install
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) sweep_results
