# fleet-scheduler developer targets. Go and moto_server live outside the
# default PATH on these machines; put them on it here so make works from any shell.
export PATH := /usr/local/go/bin:$(HOME)/go/bin:$(HOME)/.pyenv/shims:$(PATH)
export GOFLAGS ?= -buildvcs=false

BIN       ?= bin/fleet-scheduler
# The kubectl plugin (`kubectl fleet`): put its directory on PATH.
PLUGIN_BIN ?= bin/kubectl-fleet
PKGS      := ./...
# fleet-scheduler's version: what --version prints and the image's tag. The
# manifests name ghcr.io/fleet-scheduler/fleet-scheduler:$(VERSION).
VERSION   ?= v0.1.0
REVISION  ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
IMAGE_REPO ?= ghcr.io/fleet-scheduler/fleet-scheduler
IMAGE_DIR ?= bin/image
# Every timestamp in the image: the commit's time, so a commit always gives the same digest.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
K8S_VERSION = $(shell PATH='$(PATH)' go list -m -f '{{.Version}}' k8s.io/kubernetes)
VERSION_PKG := github.com/fleet-scheduler/fleet-scheduler/cmd/internal/version
# -s -w: no symbol table or DWARF (a third of the size); panics still print file:line.
LDFLAGS = -s -w -X $(VERSION_PKG).version=$(VERSION) -X $(VERSION_PKG).revision=$(REVISION) \
	-X k8s.io/component-base/version.gitVersion=$(K8S_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 \
	-X k8s.io/component-base/version.gitMinor=$(word 2,$(subst ., ,$(K8S_VERSION))) \
	-X k8s.io/component-base/version.gitTreeState=clean
# Test binaries that embed kube-apiserver take ~3 GiB to link; two at once is the most this machine holds comfortably.
TEST_P    ?= 2
TEST_TIMEOUT ?= 40m

.PHONY: all build image test bench bench-e2e generate lint run check-moto check-prometheus check-rabbitmq test-rabbitmq

all: build

# A static binary (no cgo: net and os/user have pure-Go versions), so the
# same file runs on any Linux and in the image, which has no libc.
build:
	CGO_ENABLED=0 go build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/scheduler
	CGO_ENABLED=0 go build -ldflags '$(LDFLAGS)' -o $(PLUGIN_BIN) ./cmd/kubectl-fleet

# The container image as an OCI image layout in $(IMAGE_DIR), without a
# Docker daemon (hack/image, go-containerregistry). Push it with
# `skopeo copy oci:bin/image:$(VERSION) docker://$(IMAGE_REPO):$(VERSION)`.
image: build
	@hack/ensure-deb.sh ca-certificates /etc/ssl/certs/ca-certificates.crt
	go run ./hack/image --binary $(BIN) --out $(IMAGE_DIR) --repository $(IMAGE_REPO) \
		--version $(VERSION) --revision $(REVISION) --created $(SOURCE_DATE_EPOCH)

check-moto:
	@command -v moto_server >/dev/null 2>&1 || { echo "moto_server not found: install it with: pip install 'moto[server]'" >&2; exit 1; }

# Prometheus and promtool (Debian's prometheus package): the sandbox's
# Prometheus and the alert rules' tests. Installed here when missing.
check-prometheus:
	@hack/ensure-deb.sh prometheus prometheus

# RabbitMQ (Debian's rabbitmq-server package): the broker of `make run KEDA=1`
# and of the KEDA end-to-end test. Installed here when missing; where that
# fails, make test goes on and test/keda skips, saying why.
check-rabbitmq:
	@hack/ensure-deb.sh rabbitmq-server /usr/lib/rabbitmq/bin/rabbitmq-server

test-rabbitmq:
	@hack/ensure-deb.sh rabbitmq-server /usr/lib/rabbitmq/bin/rabbitmq-server || \
		echo "make test: no rabbitmq-server, so test/keda (the RabbitMQ -> KEDA -> nodes chain) is skipped" >&2

test: check-moto check-prometheus test-rabbitmq
	# -count=1: test/e2e runs binaries it builds itself, which the test cache cannot see.
	go test -count=1 -p $(TEST_P) -timeout $(TEST_TIMEOUT) $(PKGS)

bench: check-moto
	go test -run '^$$' -bench . -benchmem -benchtime 1x -count 1 $(PKGS)

# The scale-up end to end, outside make test: a sandbox, scan-worker scaled
# to $(REPLICAS) (first capped at $(HOLD_NODES) nodes, then uncapped),
# measured by hack/scalebench; the sandbox is stopped after.
REPLICAS ?= 5000
HOLD_NODES ?= 20
bench-e2e: build check-moto
	REPLICAS=$(REPLICAS) HOLD_NODES=$(HOLD_NODES) hack/bench-e2e.sh

generate:
	hack/update-codegen.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet $(PKGS)

# KEDA=1: also the runbook's whole chain - RabbitMQ, KEDA (built from the
# hack/keda module on first use), scan-worker's ScaledObject.
KEDA ?=
# FAULT=vcpu-quota|expired-token|no-capacity starts the sandbox with one of
# the runbook's troubleshooting cases injected (README).
FAULT ?=
# SCHEDULERS=n runs n fleet-scheduler replicas; `bin/sandbox leader` names the one leading.
SCHEDULERS ?= 1
run: build check-moto check-prometheus $(if $(filter 1,$(KEDA)),check-rabbitmq)
	go build -o bin/sandbox ./hack/sandbox
	exec bin/sandbox $(if $(filter 1,$(KEDA)),--keda) -fault '$(FAULT)' --schedulers=$(SCHEDULERS)
