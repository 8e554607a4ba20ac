#!/usr/bin/env bash
# Everything CI runs: formatting, vet, the whole test suite (with the race detector, but for the
# tests on real Spark), and a bounded fuzz of the spec decoder. Tests start every server they need themselves.
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

# Two runs side by side, of about equal length. The first: everything but the TestRealSpark…
# tests, under the race detector (the AWS package's applies against moto dominate it, and wait
# more than they compute; its two tests of booted nodes on real Spark, TestAWS…OnRealSpark, run
# here too), then the TestRealSpark… tests of the hosts and local providers and
# internal/monitoring. The second: the TestRealSpark… tests of internal/cluster (the longest),
# the Nomad provider and internal/spark. Both lists are in $first and $second below. The
# TestRealSpark… tests run without the race detector: the code they drive in this process is the
# code the suite's tests drive under it (the agents are separate, uninstrumented binaries either
# way), and instrumented, the in-process packing, copying and polling doubled their time on 2
# cores. Packages run one at a time in each: two of real Spark at once in either run would
# starve each other's JVMs. Each run's output is kept whole and printed when both have ended.
# "go test -run RealSpark ./..." runs every test on real Spark.
first="./internal/provider/hosts ./internal/provider/local ./internal/monitoring"
second="./internal/cluster ./internal/provider/nomad ./internal/spark"
echo "== go test: the suite under -race, and real Apache Spark $(./hack/spark-home --version 3.5) and $(./hack/spark-home --version 4) beside it"
logs=$(mktemp -d)
# shellcheck disable=SC2086 # lists of packages
( go test -race -count=1 -timeout 45m -skip '^TestRealSpark' ./... &&
  go test -count=1 -timeout 30m -p 1 -run '^TestRealSpark' $first ) >"$logs/suite" 2>&1 &
suite=$!
real_rc=0
# shellcheck disable=SC2086 # a list of packages
go test -count=1 -timeout 45m -p 1 -run '^TestRealSpark' $second >"$logs/real" 2>&1 || real_rc=$?
suite_rc=0
wait "$suite" || suite_rc=$?
echo "-- the suite, then the real-Spark tests of $first"; cat "$logs/suite"
echo "-- the real-Spark tests of $second"; cat "$logs/real"
rm -rf "$logs"
if [ "$suite_rc" -ne 0 ] || [ "$real_rc" -ne 0 ]; then
  echo "go test failed (suite and $first: exit $suite_rc; $second on real Spark: exit $real_rc)"; exit 1
fi
# Every package with TestRealSpark… tests is in one of the two runs.
for pkg in $(grep -l '^func TestRealSpark' $(git ls-files '*_test.go') | xargs -n1 dirname | sort -u); do
  case " $first $second " in *" ./$pkg "*) continue ;; esac
  echo "$pkg has TestRealSpark… tests that neither run runs; add it to one"; exit 1
done

echo "== the autoscaling benchmark's claims on the Facebook day (without -race: the replay is single-threaded)"
go test -count=1 -run 'TestFBDayClaims' ./internal/autoscale/sim

echo "== fuzz the spec decoder (30s)"
go test ./internal/spec -run '^$' -fuzz '^FuzzParse$' -fuzztime 30s

echo "== all checks passed"
