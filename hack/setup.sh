#!/usr/bin/env bash
# Installs what sparkplane's tests need on a fresh machine of the project's kind (Debian, root,
# Go on PATH), and checks the rest. Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v git >/dev/null || need_apt+=(git)
if ! command -v java >/dev/null && [ -z "${JAVA_HOME:-}" ]; then
  # Spark needs Java; the stand-in does not, but sparkplane checks for it as it would for Spark.
  need_apt+=(openjdk-17-jre-headless)
fi
# The monitoring tests run a real Prometheus and check configs and expositions with promtool;
# the live status view is tested in a real terminal, in tmux.
command -v prometheus >/dev/null && command -v promtool >/dev/null || need_apt+=(prometheus)
command -v tmux >/dev/null || need_apt+=(tmux)
# The AWS module's user-data is checked with shellcheck.
command -v shellcheck >/dev/null || need_apt+=(shellcheck)
# Maven builds examples/jvm, the real-Spark tests' cluster-mode job.
command -v mvn >/dev/null || need_apt+=(maven)
# The Nomad provider's docker driver is tested against a real Docker daemon, which its test
# starts itself (no systemd unit).
command -v dockerd >/dev/null || need_apt+=(docker.io)
# The hosts provider's tests run Debian's real sshd in network namespaces (iproute2).
command -v sshd >/dev/null || [ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)
command -v ip >/dev/null || need_apt+=(iproute2)
# ...where an agent comes back after a reboot by cron's @reboot (the hosts have no systemd).
command -v crontab >/dev/null || need_apt+=(cron)
# hack/spark-home installs pyspark into a virtual environment of its own.
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: need root to install ${need_apt[*]}; install them and run again" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
command -v go >/dev/null || { echo "setup: Go is not on PATH" >&2; exit 1; }
echo "setup: $(go version), git $(git --version | cut -d' ' -f3), java at $(command -v java || echo "\$JAVA_HOME=$JAVA_HOME")"
echo "setup: $(prometheus --version 2>&1 | head -1), $(tmux -V), shellcheck $(shellcheck --version | sed -n 's/^version: //p')"

# Terraform, the hashicorp/aws provider and moto come with the machine image (they cannot be
# fetched here); the AWS tests need them.
missing=()
command -v terraform >/dev/null || missing+=("terraform (1.11)")
command -v moto_server >/dev/null || missing+=("moto_server (moto 5.2)")
[ -d /opt/tf-plugins/registry.terraform.io/hashicorp/aws ] || missing+=("the hashicorp/aws provider in /opt/tf-plugins")
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: missing from this machine: ${missing[*]}; the AWS tests need them (see ../shared/TESTBED.md)" >&2
  exit 1
fi
echo "setup: $(terraform version 2>/dev/null | head -1), moto $(python3 -c 'import moto; print(moto.__version__)' 2>/dev/null || echo '?')"

# Real Apache Spark for the TestRealSpark… tests: every line sparkplane is tested with, from PyPI's
# pyspark (once; cached under the tools cache by release), and the JVM example built for each.
awk '$1 !~ /^#/ && NF { print $1 }' internal/spark/tested.txt | while read -r line; do
  home=$(./hack/spark-home "$line")
  jar=$(examples/jvm/build.sh "$line")
  echo "setup: Spark $(./hack/spark-home --version "$line") at $home; examples/jvm: $jar"
done

# Test servers built from the Go module proxy (once; cached under the tools cache by version):
# Consul, for specs kept in its KV store; Nomad, for the nomad provider.
for server in consul nomad; do
  echo "setup: $server $(hack/testbed/build --version "$server") at $(hack/testbed/build "$server")"
done
