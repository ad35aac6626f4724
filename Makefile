# tinyzoo: `make demo` serves the shipped models; `make test` runs the suite; `make models` retrains.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 7860
FASHION_DIR := /usr/share/datasets/fashion-mnist
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test models data bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# serving side only (no torch): onnxruntime, gradio, pillow, numpy
$(VENV)/.serve: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

# + torch, torchvision, onnx, onnxscript (training/export) and the test tools
$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[train,dev]'
	touch $@ $(VENV)/.serve

demo: $(VENV)/.serve
	PORT=$(PORT) $(BIN)/tinyzoo demo

# Fashion-MNIST from Debian's package when running as root and it is missing (MNIST: see README)
data:
	@if [ -z "$$TINYZOO_DATA" ] && [ ! -f $(FASHION_DIR)/t10k-images-idx3-ubyte.gz ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null; \
	  else \
	    echo "Fashion-MNIST missing: sudo apt-get install dataset-fashion-mnist, or set TINYZOO_DATA"; \
	  fi; \
	fi

test: $(VENV)/.dev data
	$(BIN)/python -m pytest -q

models: $(VENV)/.dev data
	$(BIN)/tinyzoo train all
	$(BIN)/tinyzoo export all

clean:
	rm -rf $(VENV) runs .pytest_cache build *.egg-info
