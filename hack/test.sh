#!/usr/bin/env bash
# Everything CI runs: formatting, vet, the whole test suite with the race detector, and a bounded
# fuzz of the spec decoder. Tests start every server they need themselves.
set -euo pipefail
cd "$(dirname "$0")/.."

./hack/setup.sh
# Tests that need prometheus, promtool, tmux or real Spark fail here rather than skip.
export SPARKPLANE_REQUIRE_TOOLS=1

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...

echo "== staticcheck"
STATICCHECK_VERSION=v0.8.2
tools="${SPARKPLANE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/sparkplane-tools}/staticcheck-$STATICCHECK_VERSION"
if [ ! -x "$tools/staticcheck" ]; then
  echo "installing staticcheck $STATICCHECK_VERSION into $tools"
  GOBIN="$tools" go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
fi
"$tools/staticcheck" ./...

# The TestRealSpark… tests run real Apache Spark 3.5 and 4.x (hack/spark-home, installed by setup).
# Two packages at a time (go test's default on 2 cores): the AWS package's applies against moto
# wait more than they compute, and share the machine well with the real-Spark packages.
echo "== go test -race (real Apache Spark $(./hack/spark-home --version 3.5) and $(./hack/spark-home --version 4), moto, Prometheus, …)"
go test -race -count=1 -timeout 45m ./...

echo "== the autoscaling benchmark's claims on the Facebook day (without -race: the replay is single-threaded)"
go test -count=1 -run 'TestFBDayClaims' ./internal/autoscale/sim

echo "== fuzz the spec decoder (30s)"
go test ./internal/spec -run '^$' -fuzz '^FuzzParse$' -fuzztime 30s

echo "== all checks passed"
