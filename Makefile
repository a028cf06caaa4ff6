# The README's commands. Every target creates the virtual environment first if it is missing.
VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed-dev

.PHONY: demo test lint bench install crds-apply clean chromium promtool wrk images base-image image-test e2e e2e-local

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

# Container images (docs/images.md): podman where installed, else docker. What the machine needs (podman's
# runtime settings, a base image where no registry is reached, pip's CA bundle) is detected by
# scripts/build-images.sh and said on its first lines; BASE and BUILD_FLAGS override what it detects.
ENGINE      ?= $(shell command -v podman >/dev/null 2>&1 && echo podman || echo docker)
# podman's settings on machines whose cgroup layout crun refuses (scripts/containers-conf.sh), unless set
ifeq ($(origin CONTAINERS_CONF),undefined)
DETECTED_CONTAINERS_CONF := $(shell ./scripts/containers-conf.sh)
ifneq ($(DETECTED_CONTAINERS_CONF),)
export CONTAINERS_CONF := $(DETECTED_CONTAINERS_CONF)
endif
endif
TAG         ?= dev
BASE        ?=
BUILD_FLAGS ?=
BASE_IMAGE  ?= localhost/yolo-base:bookworm

images: ## build yolo-operator, yolo-api and yolo-trainer:$(TAG)
	ENGINE="$(ENGINE)" TAG="$(TAG)" BASE="$(BASE)" $(if $(BUILD_FLAGS),BUILD_FLAGS="$(BUILD_FLAGS)") ./scripts/build-images.sh

base-image: ## a Debian bookworm base image from Debian's packages (mmdebstrap): $(BASE_IMAGE)
	ENGINE="$(ENGINE)" ./scripts/make-base-image.sh "$(BASE_IMAGE)"

image-test: $(STAMP) $(VENV)/bin/helm images ## build the images, then run them as a kubelet would (tests/images)
	YOLO_IMAGE_ENGINE="$(ENGINE)" YOLO_IMAGE_TAG="$(TAG)" $(PY) -m pytest tests/images --with-images

# The e2e suite (docs/e2e.md) against the cluster in KUBECONFIG (kind, k3d, a real one, ../shared/kube).
# E2E_FLAGS: --local-kubelet runs the trainers on a stand-in node; add --with-images (after `make images`)
# for the chart install, whose pods then run with podman on a stand-in node.
E2E_FLAGS ?= --local-kubelet

e2e: $(STAMP) $(VENV)/bin/helm ## the e2e suite against the cluster in KUBECONFIG (docs/e2e.md)
	@test -n "$$KUBECONFIG" || { echo "make e2e: set KUBECONFIG to a cluster, or run make e2e-local (docs/e2e.md)" >&2; exit 2; }
	./scripts/install-kubectl.sh $(VENV)/bin
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m pytest tests/e2e --with-e2e $(E2E_FLAGS)

e2e-local: $(STAMP) $(VENV)/bin/helm ## start ../shared/kube, run make e2e against it, stop it and wipe it
	E2E_FLAGS="$(E2E_FLAGS)" VENV="$(VENV)" ./scripts/e2e-local.sh

crds-apply: ## install or upgrade the CRD on the cluster in KUBECONFIG (helm never upgrades crds/)
	kubectl apply --server-side -f deploy/helm/yolo-training-operator/crds/

clean:
	rm -rf .demo .pytest_cache .mypy_cache .ruff_cache test-output
