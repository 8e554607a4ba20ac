# sparkplane's two everyday commands are `make example` (build, then run the example job on a
# throw-away local cluster) and `make test` (everything CI runs).
GO ?= go
BIN := bin/sparkplane

.PHONY: build example test bench bench-autoscale fuzz fmt clean

build:
	$(GO) build -trimpath -o $(BIN) ./cmd/sparkplane

# Needs Java, and Spark from SPARK_HOME or downloaded from an Apache mirror.
example: build
	$(BIN) run -f examples/throwaway.yaml examples/pi.py -- 20

test:
	./hack/test.sh

# Figures for the closing notes: create time, agent memory, status latency.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 10x ./internal/cluster/

# The autoscaling benchmark: spark, cpu and static on the Facebook day, 20 other days of the same
# kind, and the chart in docs/img.
bench-autoscale: build
	$(BIN) simulate -f examples/fb-day.yaml --trace internal/autoscale/sim/testdata/FB-2009_samples_24_times_1hr_0.tsv \
		--days 20 --svg docs/img/autoscale-fb-day.svg

fuzz:
	$(GO) test ./internal/spec -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 5m

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
