# The README's commands. Every target creates the virtual environment first if it is missing.
VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed-dev

.PHONY: demo test lint bench install crds-apply clean chromium promtool wrk images base-image image-test

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

$(VENV)/bin/helm: | $(STAMP)
	./scripts/install-helm.sh $(VENV)/bin

chromium: ## Debian's Chromium for the /ui browser test
	@./scripts/install-debian.sh "$${YOLO_TEST_CHROMIUM:-/usr/bin/chromium}" chromium "the /ui test"

promtool: ## Debian's promtool (package prometheus) for the metrics lint (promtool check metrics)
	@./scripts/install-debian.sh promtool prometheus "the metrics test"

wrk: ## Debian's wrk for the load benchmarks (a Python client is used without it, at a CPU cost)
	@./scripts/install-debian.sh wrk wrk "make bench"

install: $(STAMP) $(VENV)/bin/helm chromium promtool ## create .venv and install the project with every extra (and helm)

demo: $(STAMP) ## train a synthetic dataset through the local API and show it live
	$(PY) -m yolo_api.demo

test: $(STAMP) $(VENV)/bin/helm chromium promtool ## the default test suite (unit + integration with real training; e2e is opt-in)
	$(PY) -m pytest

lint: $(STAMP) ## ruff and mypy --strict
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: $(STAMP) wrk ## benchmarks: figures printed side by side, never asserted in tests
	$(PY) -m bench

# Container images (docs/images.md): podman where installed, else docker. BASE empty: the Dockerfiles'
# upstream python:3.11 slim bookworm; BASE=localhost/yolo-base:bookworm after `make base-image` needs no
# registry. BUILD_FLAGS: more flags for every build (CI's are in .ci/run).
ENGINE      ?= $(shell command -v podman >/dev/null 2>&1 && echo podman || echo docker)
TAG         ?= dev
BASE        ?=
BUILD_FLAGS ?=
BASE_IMAGE  ?= localhost/yolo-base:bookworm

images: ## build yolo-operator, yolo-api and yolo-trainer:$(TAG)
	ENGINE="$(ENGINE)" TAG="$(TAG)" BASE="$(BASE)" BUILD_FLAGS="$(BUILD_FLAGS)" ./scripts/build-images.sh

base-image: ## a Debian bookworm base image from Debian's packages (mmdebstrap): $(BASE_IMAGE)
	ENGINE="$(ENGINE)" ./scripts/make-base-image.sh "$(BASE_IMAGE)"

image-test: $(STAMP) $(VENV)/bin/helm images ## build the images, then run them as a kubelet would (tests/images)
	YOLO_IMAGE_ENGINE="$(ENGINE)" YOLO_IMAGE_TAG="$(TAG)" $(PY) -m pytest tests/images --with-images

crds-apply: ## install or upgrade the CRD on the cluster in KUBECONFIG (helm never upgrades crds/)
	kubectl apply --server-side -f deploy/helm/yolo-training-operator/crds/

clean:
	rm -rf .demo .pytest_cache .mypy_cache .ruff_cache test-output
