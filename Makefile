# limitkit's tasks. The root module and every nested module (integration/,
# benchmarks/) are tested together, so `make test` is the whole story.

GO          ?= go
MODULES     := . $(patsubst %/go.mod,%,$(wildcard */go.mod))
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
BENCHTIME   ?= 200ms
COUNT       ?= 6

.PHONY: test bench lint redis-image fuzz

# The integration suite runs Redis in Docker from a locally built image
# (no registry is needed); building it is a no-op once it exists.
test: redis-image
	@set -e; for m in $(MODULES); do \
		echo "== go test $$m"; \
		(cd $$m && $(GO) test -race -shuffle=on -count=1 ./...); \
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
