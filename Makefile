# limitkit's tasks. The root module and every nested module (integration/,
# benchmarks/) are tested together, so `make test` is the whole story.

SHELL       := /bin/bash
GO          ?= go
MODULES     := . $(patsubst %/go.mod,%,$(wildcard */go.mod))
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
BENCHTIME   ?= 200ms
COUNT       ?= 6

.PHONY: test bench lint redis-image fuzz

# The integration suite runs Redis in Docker from a locally built image
# (no registry is needed); building it is a no-op once it exists.
# The integration suite runs verbosely, so that the figures each scenario
# reports (admitted, denied, errors, latencies, recovery times, and which
# Redis image and version) are in the output.
test: redis-image
	@set -eo pipefail; for m in $(MODULES); do \
		echo "== go test $$m"; \
		if [ "$$m" = integration ]; then \
			(cd $$m && $(GO) test -race -shuffle=on -count=1 -v ./... 2>&1 | grep -v -e '^=== ' -e '^--- PASS' -e '^    --- PASS'); \
		else \
			(cd $$m && $(GO) test -race -shuffle=on -count=1 ./...); \
		fi; \
	done

redis-image:
	@if [ -d integration ]; then bash integration/scripts/build-redis-image.sh; fi

bench:
	@set -e; for m in $(MODULES); do \
		(cd $$m && $(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -count $(COUNT) ./...); \
	done

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParseLimits -fuzztime 60s ./core

lint:
	@set -e; for m in $(MODULES); do \
		echo "== lint $$m"; \
		(cd $$m && $(GO) vet ./... && $(GO) run $(STATICCHECK) ./...); \
	done
