#!/usr/bin/env bash
# examples/jvm/build.sh LINE — builds the example applications for a line of Spark releases (3.5 or
# 4) with Maven, against the Spark artifacts internal/spark/tested.txt names for that line
# ("provided": the cluster's Spark runs them), and prints the jar's absolute path on stdout.
# Progress goes to stderr. A second call with nothing changed is instant.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
pins="$top/internal/spark/tested.txt"
line=${1:-}
row=$(awk -v l="$line" '$1 !~ /^#/ && $1 == l { print $4, $3, $5 }' "$pins")
if [ -z "$line" ] || [ -z "$row" ] || ! grep -q "<id>spark-$line</id>" "$here/pom.xml"; then
  echo "usage: examples/jvm/build.sh LINE, where LINE is one of: $(awk '$1 !~ /^#/ && NF { printf "%s ", $1 }' "$pins")" >&2
  exit 2
fi
# The Maven artifacts' release, their Scala, and the oldest Java that runs the line: the bytecode's target.
read -r version scala java <<<"$row"
out="$here/target-$line"
jar="$out/sparkplane-examples_$scala-$version.jar"

if [ -f "$jar" ] && [ -z "$(find "$here/pom.xml" "$here/src" "$here/build.sh" "$pins" -newer "$jar" -print -quit)" ]; then
  echo "$jar"
  exit 0
fi

echo "build.sh: building $jar (Spark $version, Scala $scala, Java $java bytecode)" >&2
mkdir -p "$out"
log="$out/maven.log"
if mvn -B -q -f "$here/pom.xml" -P"spark-$line" -DbuildDirectory="$out" -Dspark.version="$version" \
  -Dscala.binary.version="$scala" -Dmaven.compiler.release="$java" package >"$log" 2>&1; then
  grep -F '[WARNING]' "$log" >&2 || true
  touch "$jar" # Maven leaves an up-to-date jar as it was: newer than the sources from now on
  echo "$jar"
  exit 0
fi
cat "$log" >&2
exit 1
