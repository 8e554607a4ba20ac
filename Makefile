# sparkplane's two everyday commands are `make example` (build, then run the example job on a
# throw-away local cluster) and `make test` (everything CI runs).
GO ?= go
BIN := bin/sparkplane

.PHONY: build dist example test bench bench-hosts bench-aws smoke-aws bench-autoscale fuzz fmt clean

build:
	$(GO) build -trimpath -o $(BIN) ./cmd/sparkplane

# The Linux binaries the AWS provider uploads for its nodes, next to bin/sparkplane (where it looks).
dist: build
	GOOS=linux GOARCH=amd64 CGO_ENABLED=0 $(GO) build -trimpath -o bin/sparkplane-linux-amd64 ./cmd/sparkplane
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -trimpath -o bin/sparkplane-linux-arm64 ./cmd/sparkplane

# Needs Java and Python. Spark comes from PyPI: hack/spark-home installs the pyspark release
# sparkplane is tested with into a virtual environment of its own (once), and sparkplane finds the
# pyspark that PYSPARK_PYTHON imports, as it would a user's `pip install pyspark`.
example: build
	PYSPARK_PYTHON="$$(./hack/spark-home --python 4)" $(BIN) run -f examples/throwaway.yaml examples/pi.py -- 20

test:
	./hack/test.sh

# Figures for the closing notes: create time, agent memory, status latency.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 10x ./internal/cluster/

# The hosts provider: create on 3 and 8 real sshd hosts, every host at once and one after another.
bench-hosts:
	$(GO) test -run '^$$' -bench RealSparkCreate -benchtime 1x -timeout 30m ./internal/provider/hosts/

# The AWS provider against moto: create and destroy with 3 and 50 workers, the AWS calls of one
# status, and the same topology by plain terraform apply.
bench-aws:
	$(GO) test -run '^$$' -bench 'CreateDestroy|PlainTerraform' -benchtime 1x -timeout 60m ./internal/provider/aws/

# Against a real AWS account (costs a few cents, destroys what it made): the one step moto cannot
# take, instances booting from the module's user-data. Not part of CI.
smoke-aws: dist
	./hack/aws-smoke.sh

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
