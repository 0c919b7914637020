#!/usr/bin/env bash
# Runs the whole test suite. Installs what the tests need on a fresh Debian machine
# (nats-server from Debian's packages) or stops with a clear message.
set -euo pipefail
cd "$(dirname "$0")/.."

need_nats_server() {
  for p in "${NATS_SERVER_BIN:-}" /usr/sbin/nats-server /usr/bin/nats-server /usr/local/bin/nats-server; do
    [ -n "$p" ] && [ -x "$p" ] && return 1
  done
  return 0
}

if need_nats_server; then
  echo "nats-server is missing: installing the Debian package nats-server" >&2
  SUDO=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
      echo "error: nats-server is not installed and we are not root (no sudo); run: apt-get install -y nats-server" >&2
      exit 1
    fi
  fi
  if ! { $SUDO apt-get install -y nats-server || { $SUDO apt-get update && $SUDO apt-get install -y nats-server; }; }; then
    echo "error: could not install nats-server with apt-get; install it and set NATS_SERVER_BIN if it is not in /usr/sbin" >&2
    exit 1
  fi
fi

command -v cargo >/dev/null 2>&1 || { echo "error: cargo (Rust stable) is required: https://rustup.rs" >&2; exit 1; }

cargo build --all-targets --locked
cargo test --all-targets --locked -- --test-threads="${TEST_THREADS:-2}"
