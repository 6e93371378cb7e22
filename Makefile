# PhotonCloud. `make up` runs the platform; `make test` runs every test.
GO      ?= go
BIN     := bin/photon
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/photoncloud/photon/internal/buildinfo.Version=$(VERSION)

.PHONY: build up test check unit e2e bench fuzz clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/photon

## up: build and run every service in one process (state in ./data); the
## Debian packages it runs (QEMU for VMs, iproute2) are installed first
up: build
	./scripts/install-deps.sh
	./$(BIN) up

## test: install what the tests need, check formatting and vet, run all tests
test: check
	./scripts/install-deps.sh
	$(GO) test -race -count=1 -timeout 30m ./...

check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt -l:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## unit: everything but the black-box tests against the binary
unit:
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /test/e2e)

## e2e: the black-box tests against the built binary
e2e:
	./scripts/install-deps.sh
	$(GO) test -count=1 -timeout 20m ./test/e2e/...

## bench: ChainFire against stock etcd; IAM token checks against raw ed25519
## and authenticated against loopback-trust HTTP; CreditService reserve+commit
## against a PostgreSQL ledger; PrismNET port creations, and TCP across VXLAN
## against a plain veth (root); PlasmaVMC create+start to the guest's marker
## against the same QEMU command line run directly, 1 and 8 VMs at once;
## LightningSTOR S3 GETs against nginx serving the same files, PUTs against
## writing the same bytes with fsync, and 4 KiB PUT+GET ops/s; NightLight
## remote-write ingestion, memory per series and query_range latency against
## Prometheus receiving the same stream (results: bench/RESULTS.md)
bench:
	./scripts/install-deps.sh --bench
	$(GO) run ./bench/chainfire
	$(GO) run ./bench/iam
	$(GO) run ./bench/creditservice
	$(GO) run ./bench/prismnet
	$(GO) run ./bench/plasmavmc
	$(GO) run ./bench/lightningstor
	$(GO) run ./bench/nightlight

## fuzz: run each fuzz target for a while (each ChainFire input is an HTTP
## round trip, so minimisation is bounded by count, not time)
FUZZTIME ?= 30s
fuzz:
	$(GO) test ./internal/rest -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/rest -run '^$$' -fuzz '^FuzzQuery$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/state -run '^$$' -fuzz '^FuzzDecodePageToken$$' -fuzztime $(FUZZTIME)
	for f in FuzzKVRequest FuzzListQuery FuzzWatchQuery; do \
	  $(GO) test ./services/chainfire -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 200x || exit 1; \
	done
	for f in FuzzIssueToken FuzzLogin FuzzVerify FuzzCreateUser FuzzCreateRole FuzzCreateBinding; do \
	  $(GO) test ./services/iam -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 200x || exit 1; \
	done
	for f in FuzzReserve FuzzCommit FuzzTopUp FuzzCreateWallet FuzzQuotaUsage; do \
	  $(GO) test ./services/creditservice -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 200x || exit 1; \
	done
	for f in FuzzCreateVPC FuzzCreateSubnet FuzzCreatePort FuzzSecurityGroupRule FuzzBindPort; do \
	  $(GO) test ./services/prismnet -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 200x || exit 1; \
	done
	$(GO) test ./services/prismnet/dhcp -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME)
	$(GO) test ./services/lightningstor/sigv4 -run '^$$' -fuzz '^FuzzChunked$$' -fuzztime $(FUZZTIME)

clean:
	rm -rf bin
