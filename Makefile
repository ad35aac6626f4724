# tinyzoo: `make demo` serves the shipped models; `make test` runs the suite; `make models` retrains.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 7860
FASHION_DIR := /usr/share/datasets/fashion-mnist
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test fuzz models system-packages clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# serving side only (no torch): onnxruntime, gradio, pillow, numpy; on a machine where nvidia-smi
# lists a GPU, also the CUDA runtime and cuDNN wheels (tinyzoo[cuda]) so ORT really gets CUDA
SERVE_EXTRA := $(if $(shell nvidia-smi -L 2>/dev/null | grep -i gpu),[cuda],)
$(VENV)/.serve: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.$(SERVE_EXTRA)'
	touch $@

# + torch, torchvision, onnx, onnxscript (training/export), the test tools and Ray (its tests run in CI):
# ~7 GB of wheels, most of them torch's CUDA libraries. uv unpacks and byte-compiles them on every
# core (a fresh .venv/.dev in 94 s here, uv's own install included, against 213 s with pip and a
# parallel compileall). uv reads
# none of pip's settings: the package sources and certificates pip is given (PIP_* variables, else
# pip's config files) are passed on, and every source is searched for the best version, as pip
# does. If uv fails, pip installs as before.
PURELIB = $$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
PIP_SETTING = $${PIP_$(2):-$$($(BIN)/pip config get global.$(1) 2>/dev/null)}
$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q uv
	set --; \
	for url in $(call PIP_SETTING,index-url,INDEX_URL); do set -- "$$@" --index-url "$$url"; done; \
	for url in $(call PIP_SETTING,extra-index-url,EXTRA_INDEX_URL); do set -- "$$@" --extra-index-url "$$url"; done; \
	for place in $(call PIP_SETTING,find-links,FIND_LINKS); do set -- "$$@" --find-links "$$place"; done; \
	cert="$(call PIP_SETTING,cert,CERT)"; if [ -n "$$cert" ]; then export SSL_CERT_FILE="$$cert"; fi; \
	$(BIN)/uv pip install -q --python $(BIN)/python \
	  --index-strategy unsafe-best-match --compile-bytecode "$$@" -e '.[train,dev,scale]' \
	|| { $(BIN)/pip install -q --no-compile -e '.[train,dev,scale]' && \
	     { $(BIN)/python -m compileall -qq -j0 "$(PURELIB)" || true; }; }
	touch $@ $(VENV)/.serve

demo: $(VENV)/.serve
	PORT=$(PORT) $(BIN)/tinyzoo demo

# Debian packages the tests use, when running as root and they are missing: Fashion-MNIST
# (unless TINYZOO_DATA points elsewhere) and Chromium for the browser test. MNIST: see docs/training.md (Data).
APT_NEEDS := $(if $(or $(TINYZOO_DATA),$(wildcard $(FASHION_DIR)/t10k-images-idx3-ubyte.gz)),,dataset-fashion-mnist) \
	$(if $(wildcard /usr/bin/chromium),,chromium)
system-packages:
	@if [ -n "$(strip $(APT_NEEDS))" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "apt-get install $(strip $(APT_NEEDS))"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_NEEDS)) >/dev/null; \
	  else \
	    echo "missing Debian packages: sudo apt-get install $(strip $(APT_NEEDS)) (or set TINYZOO_DATA)"; \
	  fi; \
	fi

test: $(VENV)/.dev system-packages
	$(BIN)/python -m pytest -q

# 10,000 mutated image files through the decoder (bench/fuzz_decode.py; crashers land in runs/fuzz,
# keep them in tests/fuzz_cases/), then a random search of 10,000 cases per fuzz property (the suite
# runs 200, derandomized), odd pictures of 1-4000 px at any aspect ratio and mode included: the
# smallest picture per crash lands in tests/fuzz_cases/ (commit it: every run replays it)
FUZZ_SEED ?= 0
fuzz: $(VENV)/.dev
	$(BIN)/python -m bench.fuzz_decode --mutations 10000 --seed $(FUZZ_SEED) --save runs/fuzz
	HYPOTHESIS_PROFILE=fuzz TINYZOO_FUZZ_EXAMPLES=10000 TINYZOO_FUZZ_SAVE=tests/fuzz_cases \
	  $(BIN)/python -m pytest -q tests/test_fuzz.py

models: $(VENV)/.dev system-packages
	$(BIN)/tinyzoo train all
	$(BIN)/tinyzoo export all
	$(BIN)/tinyzoo export --int8 all

clean:
	rm -rf $(VENV) runs .pytest_cache build *.egg-info
