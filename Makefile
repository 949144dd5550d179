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
	$(BIN)/hadolint Dockerfile

typecheck: $(VENV)/.dev
	$(BIN)/mypy -p shipdet -p bench

bench: $(VENV)/.dev
	$(BIN)/python bench/engine.py && $(BIN)/python bench/service.py

clean:
	rm -rf build .mypy_cache .ruff_cache .pytest_cache

# The default model, end to end, as shipped in shipdet/weights/ (its card: shipdet-default.card.md); stages after
# the third continue from the shipped model in the background (train/stage.sh, train/README.md).
# What was run (CPU): EPOCHS=30 from scratch, then STAGE2_EPOCHS=25 and STAGE3_EPOCHS=22 more, each from the
# previous stage's best weights (a new learning-rate cycle each time, since each ended still improving).
# A CUDA machine: DEVICE=0 EPOCHS=300 STAGE2_EPOCHS=0 STAGE3_EPOCHS=0.
DATA ?= ../shared/data/ships
EPOCHS ?= 30
STAGE2_EPOCHS ?= 25
STAGE3_EPOCHS ?= 22
IMGSZ ?= 512
DEVICE ?= cpu
RUN = work/runs/default-yolo11n-$(IMGSZ)
STAGE2 = $(RUN)$(if $(filter 0,$(STAGE2_EPOCHS)),,-stage2)
FINAL = $(if $(filter 0,$(STAGE2_EPOCHS) $(STAGE3_EPOCHS)),$(STAGE2),$(RUN)-stage3)
TRAIN = OMP_NUM_THREADS=2 $(BIN)/shipdet train work/sets/merged/data.yaml --task detect --imgsz $(IMGSZ) --batch 16 \
	--close-mosaic 5 --patience 100 --workers 2 --device $(DEVICE) --project work/runs
default-model: $(VENV)/.dev
	SHIPDET=$(BIN)/shipdet bash datasets/convert.sh $(DATA) work/sets
	$(TRAIN) --model yolo11n.yaml --epochs $(EPOCHS) --name default-yolo11n-$(IMGSZ)
	$(if $(filter 0,$(STAGE2_EPOCHS)),,$(TRAIN) --model $(RUN)/weights/best.pt --epochs $(STAGE2_EPOCHS) --name default-yolo11n-$(IMGSZ)-stage2)
	$(if $(filter 0,$(STAGE2_EPOCHS) $(STAGE3_EPOCHS)),,$(TRAIN) --model $(STAGE2)/weights/best.pt --epochs $(STAGE3_EPOCHS) --name default-yolo11n-$(IMGSZ)-stage3)
	$(BIN)/shipdet evaluate $(FINAL)/weights/best.pt work/sets/merged/data.yaml --imgsz $(IMGSZ) --out $(FINAL)/eval
	$(BIN)/shipdet export $(FINAL)/weights/best.pt --imgsz $(IMGSZ) --data work/sets/merged/data.yaml \
		--name shipdet-default --out weights/shipdet-default.onnx --int8 --notes docs/default-model/limitations.md
	$(BIN)/shipdet evaluate weights/shipdet-default.onnx work/sets/merged/data.yaml --out docs/default-model --draw 6
