# Two commands on a fresh machine: `make demo` and `make test`. Each sets up .venv first.
VENV := .venv
STAMP := $(VENV)/.installed
# Stage commands in dvc.yaml call `python`: the venv's, wherever dvc is started from here.
export PATH := $(abspath $(VENV))/bin:$(PATH)

# The demo: the whole pipeline offline on the synthetic sources, on the CPU, with AlexNet and
# VGG-CNN-M-2048 as two DVC experiments (demo-alexnet, demo-vgg_m), then `dvc exp show` of both.
# Each runs from the committed params.yaml plus the overrides in staged_fer/demo.py, in a
# temporary clean checkout of HEAD: uncommitted edits stay out of it and untouched.
# Extra overrides: make demo DEMO_ARGS="-S phase1.epochs=2"

# The page template of `dvc plots show` (.dvc/config), with vega inlined so it works offline.
PLOTS_TEMPLATE := .dvc/plots/template.html

.PHONY: setup deps docs data demo test test-slow test-all test-gpu grid report bench predict clean-venv

$(STAMP): requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --upgrade pip
	$(VENV)/bin/pip install -r requirements.txt
	python tools/plots_template.py $(PLOTS_TEMPLATE)
	touch $@

$(PLOTS_TEMPLATE): $(STAMP) tools/plots_template.py tools/plots_page.html
	python tools/plots_template.py $@

setup: $(STAMP) $(PLOTS_TEMPLATE)

# Rewrite each stage's code deps in dvc.yaml from the imports of its script; run it after
# adding a module or an import (tests/test_code_deps.py fails until dvc.yaml matches).
deps: $(STAMP)
	python tools/code_deps.py --write

# Rewrite docs/reference.md (stages and params) from dvc.yaml and params.yaml; run it after
# changing either (tests/test_reference.py fails until the page matches).
docs: $(STAMP)
	python tools/reference.py --write

# Record the raw data placed at params.yaml's paths (data/external/...) in DVC's cache, so that
# queued and --temp experiments and other clones see it; commit the .dvc files it names.
# PACK=1 first replaces each split folder of the target tree by its zip archive, one file to
# DVC instead of one per photo (docs/large-datasets.md): make data PACK=1
data: $(STAMP)
	$(if $(PACK),python -m staged_fer.data.raw_pack)
	python -m staged_fer.data.raw_record

demo: $(STAMP)
	python -m staged_fer.demo $(DEMO_ARGS)

test: setup
	python -m pytest

# The slow tests (whole pipelines through dvc, the demo, the real data), which CI runs after
# `make test`; the gpu-marked ones among them skip without CUDA, each with its reason.
test-slow: setup
	python -m pytest -m slow

test-all: setup
	python -m pytest -m ''

# The CUDA tests (marked gpu); without CUDA each is skipped with its reason and the exit code
# is 0. pytest's 5 ("no test selected") would mean the gpu tests are gone: reported, not hidden.
test-gpu: $(STAMP)
	@python -m pytest -m gpu -ra; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test-gpu: no test carries the gpu marker" >&2; fi; exit $$rc

# The paper's grid: 2 models x 6 data schemes, queued; run with `dvc queue start --jobs N`.
# GPUS=0,1,2,3 also runs the queue, one worker per GPU, each run on GPUs of its own.
# The grid's own arguments: make grid GRID="--models alexnet --seeds 0 1 -S phase1.epochs=5"
grid: $(STAMP)
	python -m staged_fer.evaluation.grid $(if $(GPUS),--gpus $(GPUS)) $(GRID)

report: $(STAMP)
	python -m staged_fer.evaluation.report --out reports/grid

# Classify the faces in photos, folders and videos with the trained model (see
# docs/use-model.md): make predict INPUT="photos/ clip.mp4" [ANNOTATE=annotated] [PREDICT_ARGS="--fps 5"]
MODEL := models/phase2.pt
OUT := predictions.csv
predict: $(STAMP)
	@test -n "$(INPUT)" || { echo 'make predict needs INPUT="photo.jpg folder/ video.mp4"'; exit 1; }
	python -m staged_fer.predict $(INPUT) --model $(MODEL) --out $(OUT) $(if $(ANNOTATE),--annotate $(ANNOTATE)) $(PREDICT_ARGS)

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do echo "== $$b"; python $$b || exit 1; done

clean-venv:
	rm -rf $(VENV)
