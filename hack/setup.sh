#!/usr/bin/env bash
# Installs what sparkplane's tests need on a fresh machine of the project's kind (Debian, root,
# Go on PATH), and checks the rest. Safe to run again: it installs only what is missing.
set -euo pipefail

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
echo "setup: $(prometheus --version 2>&1 | head -1), $(tmux -V)"
