#!/usr/bin/env bash
# Benchmark: the same account server on the directory store and on a JetStream KV bucket (one
# local nats-server with JetStream, file storage, pinned to the server's CPU: the store engine
# is part of the server side). 10k accounts loaded through the POST API, then GETs (64 and 1
# connection) and POSTs of new accounts (64 connections). Loopback only; every process started
# here is stopped here (by PID). Prints a markdown table. Run by bench/run.sh (KV=0 skips it).
#
#   bench/kv.sh                    # defaults: 10 s per wrk run, 3 GET rounds
#   DURATION=5 ROUNDS=1 bench/kv.sh
#   NATS_SERVER_BIN=... bench/kv.sh  # the nats-server for JetStream (default: 2.15.1 from
#                                    # target/ when scripts/test.sh installed it, else PATH)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
WORK=${BENCH_KV_DIR:-/tmp/nas-bench-kv}
N=${ACCOUNTS:-10000}

command -v wrk >/dev/null || { echo "wrk is needed (bench/run.sh installs it)" >&2; exit 1; }
JS_BIN=${NATS_SERVER_BIN:-}
if [ -z "$JS_BIN" ]; then
  JS_BIN=$PWD/target/nats-server-2.15.1/bin/nats-server
  [ -x "$JS_BIN" ] || JS_BIN=$(command -v nats-server || echo /usr/sbin/nats-server)
fi

cargo build --release --quiet --bin nats-account-server --example benchgen
NAS=$PWD/target/release/nats-account-server
GEN=$PWD/target/release/examples/benchgen

rm -rf "$WORK"; mkdir -p "$WORK"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
source bench/lib.sh

start_jetstream() { # port -> pid
  cat > "$WORK/js.conf" <<CONF
host: 127.0.0.1
port: $1
jetstream { store_dir: "$WORK/js" }
authorization { user: nas, password: bench }
CONF
  taskset -c "$SERVER_CPU" "$JS_BIN" -c "$WORK/js.conf" > /dev/null 2>> "$WORK/js.log" &
  echo $!
}

start_nas_block() { # store-block port -> pid
  cat > "$WORK/nas.conf" <<CONF
operatorjwtpath: "$WORK/operator.jwt"
http { host: 127.0.0.1, port: $2 }
store { $1 }
logging { time: false, colors: false }
CONF
  taskset -c "$SERVER_CPU" "$NAS" -c "$WORK/nas.conf" > /dev/null 2>> "$WORK/nas.log" &
  echo $!
}

wait_ready() { # port
  for _ in $(seq 1 200); do
    curl -s "http://127.0.0.1:$1/readyz" | grep -q '"ready":true' && return 0
    sleep 0.05
  done
  echo "the account server on port $1 never became ready" >&2; return 1
}

"$GEN" init "$WORK"
"$GEN" accounts "$WORK" "$N" "$WORK/accounts.txt"
cut -d' ' -f1 "$WORK/accounts.txt" > "$WORK/keys.txt"
"$GEN" accounts "$WORK" 100000 "$WORK/post-lines.txt"

declare -A R
JPORT=$(free_port); JPID=$(start_jetstream "$JPORT"); pids+=("$JPID"); wait_port "$JPORT"
for store in dir kv; do
  echo "== $store store, $N accounts" >&2
  case $store in
    dir) BLOCK="dir: \"$WORK/store\", shard: true" ;;
    kv) BLOCK="jetstream { servers: [\"nats://127.0.0.1:$JPORT\"], user: nas, password: bench, bucket: bench }" ;;
  esac
  PORT=$(free_port); PID=$(start_nas_block "$BLOCK" "$PORT"); pids+=("$PID"); wait_port "$PORT"; wait_ready "$PORT"
  R[load_$store]=$("$GEN" post "$WORK/accounts.txt" "127.0.0.1:$PORT" 32)
  echo "${R[load_$store]}" >&2
  declare -A RUNS=()
  for round in $(seq 1 "$ROUNDS"); do
    for C in 64 1; do
      RUNS[$C]+="$(wrk_run "$PORT" "$C" bench/get.lua KEYS_FILE="$WORK/keys.txt")"$'\n'
    done
  done
  for C in 64 1; do R[get${C}_$store]=$(printf '%s' "${RUNS[$C]}" | median_of); done
  R[post_$store]=$(wrk_run "$PORT" 64 bench/post.lua LINES_FILE="$WORK/post-lines.txt")
  R[post1_$store]=$(wrk_run "$PORT" 1 bench/post.lua LINES_FILE="$WORK/post-lines.txt")
  stop "$PID"
done
stop "$JPID"

col() { echo "$1" | cut -d' ' -f"$2"; }
ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'{a/b:.2f}x' if b else 'n/a')" "$1" "$2"; }
echo
echo "### Directory store vs JetStream KV store ($(nproc) cores: account server and JetStream nats-server ($("$JS_BIN" --version)) on CPU $SERVER_CPU, wrk on CPU $LOAD_CPU; $N accounts; GET: median of $ROUNDS rounds of ${DURATION}s)"
echo
echo "| measurement | directory store | JetStream KV store | KV / directory |"
echo "|---|---|---|---|"
for C in 64 1; do
  a=${R[get${C}_dir]}; b=${R[get${C}_kv]}
  echo "| GET, ${C} conn: req/s | $(col "$a" 1) | $(col "$b" 1) | $(ratio "$(col "$b" 1)" "$(col "$a" 1)") |"
  echo "| GET, ${C} conn: p50 / p99 ms | $(col "$a" 2) / $(col "$a" 3) | $(col "$b" 2) / $(col "$b" 3) | p99 $(ratio "$(col "$b" 3)" "$(col "$a" 3)") |"
  echo "| GET, ${C} conn: errors | $(col "$a" 4) | $(col "$b" 4) | |"
done
for C in "" 1; do
  a=${R[post${C}_dir]}; b=${R[post${C}_kv]}
  label="64 conn"; [ "$C" = 1 ] && label="1 conn"
  echo "| POST new accounts, $label: req/s | $(col "$a" 1) | $(col "$b" 1) | $(ratio "$(col "$b" 1)" "$(col "$a" 1)") |"
  echo "| POST new accounts, $label: p50 / p99 ms | $(col "$a" 2) / $(col "$a" 3) | $(col "$b" 2) / $(col "$b" 3) | p99 $(ratio "$(col "$b" 3)" "$(col "$a" 3)") |"
  echo "| POST new accounts, $label: errors | $(col "$a" 4) | $(col "$b" 4) | |"
done
echo "| load through POST API, 32 conn | ${R[load_dir]#posted } | ${R[load_kv]#posted } | |"
