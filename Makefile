# Two commands for a newcomer: `make serve` (the service on the bundled model) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export YOLO_OFFLINE := 1
export YOLO_AUTOINSTALL := false
export NO_ALBUMENTATIONS_UPDATE := 1
export ORT_DISABLE_TELEMETRY := 1
export HF_HUB_OFFLINE := 1

.PHONY: serve test test-slow lint typecheck install-serve install-dev bench clean default-model

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# The serving install stays small: onnxruntime + FastAPI, no torch.
$(VENV)/.serve: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[serve]'
	touch $@

# Everything the tests need: serving, training (torch 2.14.1 from the local disk), geo, dev tools.
$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e '.[serve,train,geo,dist,dev]'
	touch $@ $(VENV)/.serve

install-serve: $(VENV)/.serve
install-dev: $(VENV)/.dev

serve: $(VENV)/.serve
	$(BIN)/shipdet serve $(SERVE_ARGS)

test: $(VENV)/.dev lint typecheck
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-slow: $(VENV)/.dev
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check .

# serve/, train/ and datasets/ are shipdet subpackages by build configuration; mypy needs them in place,
# so it checks a tree of links shaped like the installed package.
typecheck: $(VENV)/.dev
	rm -rf build/typecheck && mkdir -p build/typecheck/shipdet
	cd build/typecheck/shipdet && ln -s ../../../shipdet/*.py . && ln -s ../../../shipdet/rescore rescore && ln -s ../../../shipdet/voyages voyages && ln -s ../../../serve serve \
		&& ln -s ../../../train train && ln -s ../../../datasets datasets
	cd build/typecheck && ../../$(BIN)/mypy --config-file ../../pyproject.toml -p shipdet

bench: $(VENV)/.dev
	$(BIN)/python bench/engine.py && $(BIN)/python bench/service.py

clean:
	rm -rf build .mypy_cache .ruff_cache .pytest_cache
