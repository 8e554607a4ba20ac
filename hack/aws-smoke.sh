#!/usr/bin/env bash
# A smoke test of the AWS provider against a real AWS account, for the step moto cannot take:
# real instances booting from the module's user-data. It costs a few cents (an m5.large master
# and two spot m5.xlarge workers for about a quarter of an hour) and always destroys what it
# made, then checks by tag that nothing is left.
#
# Needs: AWS credentials and a region the AWS way (AWS_PROFILE / AWS_REGION, SSO, ...), Terraform,
# Java and a Spark (SPARK_HOME, or sparkplane downloads it), and `make dist`.
#
#   AWS_PROFILE=sandbox AWS_REGION=eu-west-1 ./hack/aws-smoke.sh
set -euo pipefail
cd "$(dirname "$0")/.."

name=${NAME:-smoke-$(date +%s)}
bin=${SPARKPLANE:-bin/sparkplane}
region=${AWS_REGION:-$(aws configure get region)}
[ -x "$bin" ] || { echo "no $bin: run make dist first" >&2; exit 2; }
ip=$(curl -fsS https://checkip.amazonaws.com)

seconds() { date +%s; }
destroy() {
  local start
  start=$(seconds)
  "$bin" destroy "$name" --yes
  echo "smoke: destroy took $(( $(seconds) - start )) s"
  local left
  left=$(aws resourcegroupstaggingapi get-resources --region "$region" \
    --tag-filters "Key=sparkplane/cluster,Values=$name" \
    --query 'ResourceTagMappingList[].ResourceARN' --output text)
  if [ -n "$left" ]; then
    echo "smoke: FAILED: still tagged with $name: $left" >&2
    exit 1
  fi
  echo "smoke: nothing tagged sparkplane/cluster=$name remains"
}
trap destroy EXIT

start=$(seconds)
"$bin" create -f examples/aws.yaml -n "$name" --set "aws.region=$region" \
  --set "aws.allowedCIDRs=[$ip/32]" --set autoscale.policy=off --workers 2
echo "smoke: create took $(( $(seconds) - start )) s"
"$bin" status "$name"

# Cluster mode: the driver runs on a worker, from Spark's own examples, which every node has
# (DriverRunner fetches file: URLs; it has no local: scheme for the application jar).
jar="file:///var/lib/sparkplane/spark-3.5.3/examples/jars/spark-examples_2.12-3.5.3.jar"
"$bin" submit -n "$name" --wait --class org.apache.spark.examples.SparkPi "$jar" 20
# Client mode: a Python driver on the master, uploaded from here.
"$bin" submit -n "$name" --wait examples/pi.py 20

"$bin" add "$name" 1
"$bin" remove "$name" 1
"$bin" status "$name"
echo "smoke: passed; destroying"
