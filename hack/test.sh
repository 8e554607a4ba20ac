#!/usr/bin/env bash
# Everything CI runs: formatting, vet, the whole test suite with the race detector, and a bounded
# fuzz of the spec decoder. Tests start every server they need themselves.
set -euo pipefail
cd "$(dirname "$0")/.."

./hack/setup.sh

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...

echo "== go test -race"
go test -race -count=1 -timeout 30m ./...

echo "== fuzz the spec decoder (30s)"
go test ./internal/spec -run '^$' -fuzz '^FuzzParse$' -fuzztime 30s

echo "== all checks passed"
