# fleet-scheduler developer targets. Go and moto_server live outside the
# default PATH on these machines; put them on it here so make works from any shell.
export PATH := /usr/local/go/bin:$(HOME)/go/bin:$(HOME)/.pyenv/shims:$(PATH)
export GOFLAGS ?= -buildvcs=false

BIN       := bin/fleet-scheduler
PKGS      := ./...
# Test binaries that embed kube-apiserver take ~3 GiB to link; two at once is the most this machine holds comfortably.
TEST_P    ?= 2
TEST_TIMEOUT ?= 40m

.PHONY: all build test bench generate lint run check-moto

all: build

build:
	go build -o $(BIN) ./cmd/scheduler

check-moto:
	@command -v moto_server >/dev/null 2>&1 || { echo "moto_server not found: install it with: pip install 'moto[server]'" >&2; exit 1; }

test: check-moto
	# -count=1: test/e2e runs binaries it builds itself, which the test cache cannot see.
	go test -count=1 -p $(TEST_P) -timeout $(TEST_TIMEOUT) $(PKGS)

bench: check-moto
	go test -run '^$$' -bench . -benchmem -benchtime 1x -count 1 $(PKGS)

generate:
	hack/update-codegen.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet $(PKGS)

run: build check-moto
	go build -o bin/sandbox ./hack/sandbox
	exec bin/sandbox
