#!/bin/bash
# Written by the sparkplane Terraform module. It only bootstraps the node: the sparkplane
# binary comes from the cluster's S3 prefix, by the instance's role; the agent then fetches
# the cluster secret from SSM and Spark from the same prefix. No secret is in this script.
set -euo pipefail

mkdir -p /etc/sparkplane /var/lib/sparkplane
# sparkplane:node
cat > /etc/sparkplane/node.json <<'NODE'
{
  "cluster": "analytics",
  "role": "worker",
  "region": "eu-west-1",
  "bucket": "analytics-data",
  "prefix": "clusters/analytics/",
  "parameterPath": "/sparkplane/analytics/",
  "masterHost": "master.analytics.sparkplane.internal",
  "agentPort": 7443,
  "sparkVersion": "4.3.0"
}
NODE
# sparkplane:end

# Java for Spark, from the distribution's packages.
if ! command -v java >/dev/null 2>&1; then
  if command -v dnf >/dev/null 2>&1; then
    dnf install -y -q java-17-amazon-corretto-headless
  elif command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless
  fi
fi

# The agent, from the cluster's prefix (retried: on a new cluster the upload may still be going).
for attempt in $(seq 1 30); do
  if aws s3 cp --only-show-errors --region "eu-west-1" \
    "s3://analytics-data/clusters/analytics/bin/sparkplane-linux-amd64" /usr/local/bin/sparkplane.new; then
    break
  fi
  echo "sparkplane: binary not there yet (attempt $attempt)" >&2
  sleep $((attempt * 2))
done
mv /usr/local/bin/sparkplane.new /usr/local/bin/sparkplane
chmod 0755 /usr/local/bin/sparkplane

cat > /etc/systemd/system/sparkplane-agent.service <<'UNIT'
[Unit]
Description=sparkplane agent
After=network-online.target
Wants=network-online.target

[Service]
ExecStart=/usr/local/bin/sparkplane agent --ec2 /etc/sparkplane/node.json
Restart=always
RestartSec=5
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable --now sparkplane-agent.service
