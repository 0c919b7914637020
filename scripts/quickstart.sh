#!/usr/bin/env bash
# The whole loop in one go: a demo operator and accounts, the account server, nats-server
# resolving through it, a user exchanging a message, and a pushed change taking effect.
# Needs nats-server (apt-get install -y nats-server). Ports: NAS_PORT (9090), NATS_PORT (4222).
# Every process started here is stopped here (by PID).
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO=${QUICKSTART_DIR:-./data/demo}
export NAS_PORT=${NAS_PORT:-9090} NATS_PORT=${NATS_PORT:-4222}
PROFILE=${QUICKSTART_PROFILE:-release}
NATS_SERVER=${NATS_SERVER_BIN:-$(command -v nats-server || echo /usr/sbin/nats-server)}
[ -x "$NATS_SERVER" ] || { echo "nats-server is missing: apt-get install -y nats-server" >&2; exit 1; }

if [ "$PROFILE" = release ]; then CARGO_FLAGS=(--release); TARGET=release; else CARGO_FLAGS=(); TARGET=debug; fi
NAS=${NAS_BIN:-./target/$TARGET/nats-account-server}
QS=${QUICKSTART_BIN:-./target/$TARGET/examples/quickstart}
if [ -z "${NAS_BIN:-}" ] || [ ! -x "$QS" ]; then
  cargo build --quiet "${CARGO_FLAGS[@]}" --bin nats-account-server --example quickstart
fi

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

wait_port() { # host port what
  for _ in $(seq 1 100); do (echo > "/dev/tcp/$1/$2") 2>/dev/null && return 0; sleep 0.1; done
  echo "$3 did not come up on $1:$2" >&2; return 1
}

rm -rf "$DEMO" && mkdir -p "$DEMO"
echo "== 1. demo operator, system account, account DEMO and user creds (made in Rust with nkeys)"
"$QS" init "$DEMO"

echo "== 2. the account server"
"$NAS" -c "$DEMO/nas.conf" 2> "$DEMO/nas.log" & pids+=($!)
wait_port 127.0.0.1 "$NAS_PORT" "the account server"
grep 'resolver: URL' "$DEMO/nas.log"

echo "== 3. push SYS and DEMO (what nsc push -A does)"
"$QS" push "$DEMO" SYS
"$QS" push "$DEMO" DEMO

echo "== 4. nats-server in operator mode, resolving accounts through the account server"
"$NATS_SERVER" -c "$DEMO/nats-server.conf" 2> "$DEMO/nats-server.log" & pids+=($!)
wait_port 127.0.0.1 "$NATS_PORT" "nats-server"

echo "== 5. a DEMO user connects and exchanges a message"
"$QS" client "$DEMO"

echo "== 6. push a change: DEMO may hold only 1 subscription"
"$QS" limit "$DEMO" 1
"$QS" push "$DEMO" DEMO
for _ in $(seq 1 50); do grep -q 'confirmed "jwt updated"' "$DEMO/nas.log" && break; sleep 0.1; done
grep 'confirmed "jwt updated"' "$DEMO/nas.log" | tail -1

echo "== 7. the running nats-server enforces it, no restart"
"$QS" check-limit "$DEMO"
echo "quick start done"
