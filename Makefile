# fprt — the two commands:   make demo   |   make test
# Both create .venv when it is missing, install fprt into it (building the similarity extension)
# and then run. Nothing else needs to be installed by hand.

PYTHON  ?= $(shell command -v python3.11 || command -v python3)
VENV    := .venv
PY      := $(VENV)/bin/python
PIP     := $(PY) -m pip
STAMP   := $(VENV)/.fprt-installed
EXT_SRC := $(shell find cpp_ext -type f \( -name '*.cpp' -o -name '*.cu' -o -name '*.h' -o -name '*.cuh' -o -name '*.py' \) 2>/dev/null)
DEMO    ?= demo_out
PYTEST_ARGS ?=

.PHONY: demo test install install-gpu clean-venv bench bench-gpu browser

FPRT    := $(VENV)/bin/fprt

# The main job on built-in demo data; every step is one `fprt` command a user can run too:
# demo data -> data summary -> train a Siamese net -> export to ONNX (+ parity, INT8 gate) -> score + metrics.
# About 7 minutes on 2 CPU cores (DEMO_EPOCHS / DEMO_SIZE make it shorter or better).
DEMO_SIZE   ?= 128
DEMO_EPOCHS ?= 8
DEMO_TRAIN  := --size $(DEMO_SIZE) --epochs $(DEMO_EPOCHS) --lr 1e-3
# Same demo numbers on every x86-64 CPU with AVX2: PyTorch's CPU kernels (ATen, oneDNN, MKL) pinned to one
# instruction set and MKL's reproducible mode, and a fixed thread count (README "Same numbers on every CPU").
# `make demo DEMO_ISA=` uses this CPU's fastest kernels instead.
DEMO_ISA     ?= avx2
DEMO_THREADS ?= 2
COMMA := ,
demo: export ATEN_CPU_CAPABILITY = $(if $(DEMO_ISA),$(DEMO_ISA),default)
demo: export ONEDNN_MAX_CPU_ISA = $(if $(DEMO_ISA),AVX2,ALL)
demo: export MKL_CBWR = $(if $(DEMO_ISA),AVX2$(COMMA)STRICT,AUTO)
demo: export OMP_NUM_THREADS = $(DEMO_THREADS)
demo: $(STAMP)
	$(FPRT) checks
	$(FPRT) make-demo-data --out $(DEMO)/subsets --task subsets --overwrite
	$(FPRT) info --data $(DEMO)/subsets
	rm -rf $(DEMO)/runs/subsets
	$(FPRT) train siamese --data $(DEMO)/subsets --out $(DEMO)/runs/subsets $(DEMO_TRAIN)
	$(FPRT) export-onnx --model $(DEMO)/runs/subsets --out $(DEMO)/subsets.onnx
	$(FPRT) export-onnx --model $(DEMO)/runs/subsets --out $(DEMO)/subsets-int8.onnx --int8
	$(FPRT) score --data $(DEMO)/subsets --model $(DEMO)/subsets.onnx --out $(DEMO)/score-subsets --overwrite --labels $(DEMO)/subsets/test/labels.csv
	$(FPRT) make-demo-data --out $(DEMO)/membership --task membership --overwrite
	$(FPRT) info --data $(DEMO)/membership
	rm -rf $(DEMO)/runs/membership
	$(FPRT) train siamese --data $(DEMO)/membership --out $(DEMO)/runs/membership $(DEMO_TRAIN)
	$(FPRT) export-onnx --model $(DEMO)/runs/membership --out $(DEMO)/membership.onnx
	$(FPRT) score --data $(DEMO)/membership --model $(DEMO)/membership.onnx --out $(DEMO)/score-membership --overwrite --labels $(DEMO)/membership/test/labels.csv
	$(FPRT) report --out $(DEMO)/score-subsets --labels $(DEMO)/subsets/test/labels.csv
	$(FPRT) report --out $(DEMO)/score-membership --labels $(DEMO)/membership/test/labels.csv
	@echo "open the reports: $(abspath $(DEMO))/score-subsets/report.html  $(abspath $(DEMO))/score-membership/report.html"

# Headless Chromium for the report's browser test (tests/report/test_report_browser.py): Debian's chromium +
# chromium-driver, installed only when missing and only as root with apt-get; never fails the build (the test
# then skips and says why).
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing chromium + chromium-driver (apt-get) for the report's browser test"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver) \
	    >/dev/null 2>&1 || echo "could not install chromium; the report's browser test will skip"; \
	else echo "chromium/chromedriver missing (not root with apt-get): the report's browser test will skip"; fi

test: $(STAMP) browser
	$(PY) -m pytest -q tests $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m pytest benchmarks --benchmark-only $(PYTEST_ARGS)

# GPU benchmarks in one command on a machine with a GPU (see benchmarks/gpu.sh --help)
bench-gpu: $(STAMP)
	benchmarks/gpu.sh

install: $(STAMP)

# ONNX Runtime's CUDA provider: onnxruntime-gpu replaces onnxruntime (both own the `onnxruntime` module, so
# the CPU package is removed first) and TensorRT comes with the [gpu] extra. README "GPU use".
install-gpu: $(VENV)/.torch
	$(PIP) uninstall -y onnxruntime onnxruntime-gpu
	echo gpu > $(VENV)/.fprt-onnxruntime
	FPRT_ONNXRUNTIME=gpu $(PIP) install -q --no-build-isolation -e '.[dev,ray,gpu]'
	touch $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel

# torch first, pinned, so it comes from this machine's disk where it lies there (a CUDA build).
$(VENV)/.torch: | $(PY)
	$(PIP) install -q torch==2.14.1 torchvision==0.29.1
	touch $@

$(STAMP): $(VENV)/.torch setup.py Makefile $(EXT_SRC)
	FPRT_ONNXRUNTIME=$$(cat $(VENV)/.fprt-onnxruntime 2>/dev/null || echo cpu) $(PIP) install -q --no-build-isolation -e '.[dev,ray]'
	touch $@

clean-venv:
	rm -rf $(VENV) build fprt/*.so
