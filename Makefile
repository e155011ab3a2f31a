# The two README commands: `make demo` (the DVC DAG on the embedded sample) and `make test`.
PY ?= python3

.PHONY: install demo test

install:
	$(PY) -m pip install --quiet torch==2.13.0          # the CPU wheel; never a CUDA build
	$(PY) -m pip install --quiet -e ".[test]"

demo: install
	dvc repro
	@echo "shards: data/sample/packed (manifest.json); one image drawn: vtonpipe show <image_id> --dataset sample"

test: install
	$(PY) -m pytest -q
