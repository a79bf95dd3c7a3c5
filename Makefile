# Two commands on a fresh machine: `make demo` and `make test`. Each sets up .venv first.
VENV := .venv
STAMP := $(VENV)/.installed
# Stage commands in dvc.yaml call `python`: the venv's, wherever dvc is started from here.
export PATH := $(abspath $(VENV))/bin:$(PATH)

# The demo: the whole pipeline offline on the synthetic sources, on the CPU, as a DVC
# experiment in a temporary folder (`--temp`), so params.yaml and the workspace stay as
# they are; `dvc exp show` lists the result. Models start from random weights (ImageNet
# weights need a download), so the learning rate is higher than the paper's fine-tuning
# rate, and inputs are 64 px (AlexNet's smallest) to fit a few minutes on two cores.
DEMO_PARAMS := \
	-S fer.source=synthetic -S emotiw.source=synthetic \
	-S align.landmarks=dlib -S align.detector.max_side=480 -S align.detector.min_size=40 \
	-S models.alexnet.weights=none -S models.alexnet.input_size=64 -S input.resize=72 \
	-S stage1.epochs=8 -S stage1.lr=0.02 -S stage1.lr_step=6 -S stage1.batch_size=64 \
	-S stage2.epochs=6 -S stage2.lr=0.005 -S stage2.lr_step=4 -S stage2.batch_size=32
# The columns of `dvc exp show` worth a glance after the demo.
SHOW_COLUMNS := 'Experiment|Created|stage[12]\.data|fer_public_test\.accuracy$$|emotiw_val\.accuracy$$|emotiw_val_stage1\.accuracy$$'

.PHONY: setup demo test test-all test-gpu grid report bench predict clean-venv

$(STAMP): requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --upgrade pip
	$(VENV)/bin/pip install -r requirements.txt
	touch $@

setup: $(STAMP)

demo: $(STAMP)
	@git rev-parse --verify -q HEAD >/dev/null || { echo "make demo needs a git commit (DVC experiments are commits): git add -A && git commit -m init"; exit 1; }
	dvc exp run --temp $(DEMO_PARAMS)
	dvc exp show --no-pager --md --drop '.*' --keep $(SHOW_COLUMNS)

test: $(STAMP)
	python -m pytest

test-all: $(STAMP)
	python -m pytest -m ''

# The CUDA tests (marked gpu); without CUDA each is skipped with its reason and the exit code
# is 0. pytest's 5 ("no test selected") would mean the gpu tests are gone: reported, not hidden.
test-gpu: $(STAMP)
	@python -m pytest -m gpu -ra; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test-gpu: no test carries the gpu marker" >&2; fi; exit $$rc

# The paper's grid: 2 models x 6 data schemes, queued; run with `dvc queue start --jobs N`.
# Extra overrides for every run: make grid GRID="-S stage1.epochs=5"
grid: $(STAMP)
	python -m staged_fer.evaluation.grid $(GRID)

report: $(STAMP)
	python -m staged_fer.evaluation.report --out reports/grid

# Classify the faces in photos, folders and videos with the trained model (see the README's
# "Use the model"): make predict INPUT="photos/ clip.mp4" [ANNOTATE=annotated] [PREDICT_ARGS="--fps 5"]
MODEL := models/stage2.pt
OUT := predictions.csv
predict: $(STAMP)
	@test -n "$(INPUT)" || { echo 'make predict needs INPUT="photo.jpg folder/ video.mp4"'; exit 1; }
	python -m staged_fer.predict $(INPUT) --model $(MODEL) --out $(OUT) $(if $(ANNOTATE),--annotate $(ANNOTATE)) $(PREDICT_ARGS)

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do echo "== $$b"; python $$b || exit 1; done

clean-venv:
	rm -rf $(VENV)
