#!/usr/bin/env bash
# Benchmark, in ONE run: our server against nginx serving the same sharded store as static files.
# Installs wrk and nginx from Debian when missing. Loopback only; every process started here is
# stopped here (by PID). Prints a markdown table.
#
#   bench/run.sh                 # full run (10k and 100k accounts, 1M for the start time)
#   MILLION=0 bench/run.sh       # skip the 1M start-time measurement
#   DURATION=5 bench/run.sh      # seconds per wrk run (default 10)
#   ROUNDS=5 bench/run.sh        # GET rounds, each server in turn (default 3; medians shown)
#   FLEET=0 KV=0 bench/run.sh    # skip the fleet-restart (bench/fleet.sh) and KV (bench/kv.sh) tables
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
MILLION=${MILLION:-1}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
WORK=${BENCH_DIR:-/tmp/nas-bench}

need() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
for pkg in wrk nginx; do
  if ! need "$pkg"; then
    echo "installing $pkg from Debian" >&2
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get install -y "$pkg" >/dev/null || { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y "$pkg" >/dev/null; }
  fi
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
command -v python3 >/dev/null || { echo "python3 is needed for the start-time probe" >&2; exit 1; }

cargo build --release --quiet --bin nats-account-server --example benchgen
NAS=$PWD/target/release/nats-account-server
GEN=$PWD/target/release/examples/benchgen

# A previous run's files are deleted at the end, not now: ext4 without a journal steers new
# inodes away from ones deleted in the last 1-5 minutes, and allocating among hundreds of
# thousands of them made this run's POSTs (new files) several times slower. For the same
# reason, leave 5 minutes between two runs.
OLD=""; [ -e "$WORK" ] && { OLD="$WORK.old.$$"; mv "$WORK" "$OLD"; }
mkdir -p "$WORK"; chmod 755 "$WORK"
# The POST runs' input (hundreds of MB of JWT lines, written just before each run) goes to
# tmpfs when there is one: written to the store's disk, its write-back made every sync of the
# run that followed wait for it (single syncs of 20-200 ms on the CI-sized VM).
LINES=$(mktemp -d /dev/shm/nas-bench-lines.XXXXXX 2>/dev/null || echo "$WORK")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true
  [ "$LINES" = "$WORK" ] || rm -rf "$LINES"
  [ -z "$OLD" ] || rm -rf "$OLD"
}
trap cleanup EXIT
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

source bench/lib.sh

rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
# Both servers read the same files: start each GET run with them in the page cache.
warm() { find "$1" -name '*.jwt' -print0 | xargs -0 cat > /dev/null; }

start_time_ms() { # store -> ms from exec to the first 200 on /jwt/v1/accounts/
  local port; port=$(free_port)
  cat > "$WORK/nas-start.conf" <<CONF
operatorjwtpath: "$WORK/operator.jwt"
http { host: 127.0.0.1, port: $port }
store { dir: "$1", shard: true }
logging { time: false, colors: false }
CONF
  python3 - "$NAS" "$WORK/nas-start.conf" "$port" "$SERVER_CPU" <<'PY'
import http.client, subprocess, sys, time
nas, conf, port, cpu = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
t0 = time.perf_counter()
p = subprocess.Popen(["taskset", "-c", cpu, nas, "-c", conf], stderr=subprocess.DEVNULL)
try:
    deadline = t0 + 30
    while time.perf_counter() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/jwt/v1/accounts/")
            if c.getresponse().status == 200:
                print(f"{(time.perf_counter() - t0) * 1000:.1f}")
                break
        except OSError:
            time.sleep(0.0005)
    else:
        print("timeout")
finally:
    p.kill(); p.wait()
PY
}

"$GEN" init "$WORK"
declare -A R
for N in 10000 100000; do
  echo "== $N accounts" >&2
  STORE="$WORK/store-$N"; mkdir -p "$STORE"; chmod 755 "$STORE"
  "$GEN" accounts "$WORK" "$N" "$WORK/accounts-$N.txt"
  cut -d' ' -f1 "$WORK/accounts-$N.txt" > "$WORK/keys-$N.txt"
  PORT=$(free_port); PID=$(start_nas "$STORE" "$PORT" "$SERVER_CPU"); pids+=("$PID"); wait_port "$PORT"
  R[load_$N]=$("$GEN" post "$WORK/accounts-$N.txt" "127.0.0.1:$PORT" 32)
  echo "${R[load_$N]}" >&2
  # nginx serves the same files through a hard-linked mirror of the store folder: the very
  # same inodes and bytes, but not the folders our server watches with inotify (a watch on a
  # folder makes every open of a file in it a little dearer, for any process).
  MIRROR="$WORK/mirror-$N"; rm -rf "$MIRROR"; cp -al "$STORE" "$MIRROR"; chmod -R a+rX "$MIRROR"
  NPORT=$(free_port); NPID=$(start_nginx "$MIRROR" "$NPORT" "$SERVER_CPU"); pids+=("$NPID"); wait_port "$NPORT"
  warm "$STORE"; warm "$MIRROR"
  # Both servers stay up, pinned to the same CPU, and are measured in turns, so that a slow
  # phase of this shared machine hits both alike; the table shows medians over the rounds.
  declare -A RUNS=()
  for round in $(seq 1 "$ROUNDS"); do
    echo "   round $round/$ROUNDS" >&2
    for C in 64 1; do
      RUNS[nas${C}]+="$(wrk_run "$PORT" "$C" bench/get.lua KEYS_FILE="$WORK/keys-$N.txt")"$'\n'
      RUNS[ngx${C}]+="$(wrk_run "$NPORT" "$C" bench/get.lua KEYS_FILE="$WORK/keys-$N.txt")"$'\n'
    done
  done
  for k in nas64 nas1 ngx64 ngx1; do R[${k}_$N]=$(printf '%s' "${RUNS[$k]}" | median_of); done
  R[rss_$N]=$(rss_kib "$PID")
  stop "$NPID"
  if [ "$N" = 10000 ]; then
    "$GEN" accounts "$WORK" 100000 "$LINES/post-lines.txt"
    # Write back what the benchmark itself wrote (the mirror): the POSTs' syncs would
    # otherwise queue behind that write-back.
    sync
    R[post]=$(wrk_run "$PORT" 64 bench/post.lua LINES_FILE="$LINES/post-lines.txt")
    # Overwrites: newer versions (iat + 1, + 2, ...) of the accounts just created, in order.
    created=$(( $(find "$STORE" -name '*.jwt' | wc -l) - N ))
    "$GEN" renew "$WORK" "$LINES/post-lines.txt" "$created" 3 "$LINES/renew-lines.txt"
    sync
    R[overwrite]=$(wrk_run "$PORT" 64 bench/post.lua LINES_FILE="$LINES/renew-lines.txt")
    # One client: new accounts not POSTed yet.
    tail -n +"$((created + 1))" "$LINES/post-lines.txt" > "$LINES/post1-lines.txt"
    sync
    R[post1]=$(wrk_run "$PORT" 1 bench/post.lua LINES_FILE="$LINES/post1-lines.txt")
  fi
  stop "$PID"
done
R[start_100000]=$(start_time_ms "$WORK/store-100000")
if [ "$MILLION" = 1 ]; then
  echo "== writing 1M accounts for the start-time measurement" >&2
  "$GEN" store "$WORK" 1000000 "$WORK/store-1m"
  R[start_1m]=$(start_time_ms "$WORK/store-1m")
else
  R[start_1m]="skipped"
fi

col() { echo "$1" | cut -d' ' -f"$2"; }
ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'{a/b:.2f}x' if b else 'n/a')" "$1" "$2"; }
echo
echo "### Benchmark ($(nproc) cores: server/nginx on CPU $SERVER_CPU, wrk on CPU $LOAD_CPU; GET: median of $ROUNDS rounds of ${DURATION}s per server; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
echo
echo "| measurement | nats-account-server | nginx (static) | ratio |"
echo "|---|---|---|---|"
for N in 10000 100000; do
  for C in 64 1; do
    a=${R[nas${C}_$N]}; b=${R[ngx${C}_$N]}
    echo "| GET ${N} accounts, ${C} conn: req/s | $(col "$a" 1) | $(col "$b" 1) | $(ratio "$(col "$a" 1)" "$(col "$b" 1)") |"
    echo "| GET ${N} accounts, ${C} conn: p50 / p99 ms | $(col "$a" 2) / $(col "$a" 3) | $(col "$b" 2) / $(col "$b" 3) | p99 $(ratio "$(col "$a" 3)" "$(col "$b" 3)") |"
    echo "| GET ${N} accounts, ${C} conn: errors | $(col "$a" 4) | $(col "$b" 4) | |"
  done
done
for k in post overwrite post1; do
  case $k in
    post) what="new accounts, 64 conn" ;;
    overwrite) what="newer versions of stored accounts, 64 conn" ;;
    post1) what="new accounts, 1 conn" ;;
  esac
  echo "| POST (durable, $what): req/s | $(col "${R[$k]}" 1) | | |"
  echo "| POST ($what): p50 / p99 ms, errors | $(col "${R[$k]}" 2) / $(col "${R[$k]}" 3), $(col "${R[$k]}" 4) | | |"
done
echo "| load through POST API, 32 conn (10k / 100k) | ${R[load_10000]#posted } / ${R[load_100000]#posted } | | |"
echo "| start to first 200, 100k stored (ms) | ${R[start_100000]} | | target < 100 |"
echo "| start to first 200, 1M stored (ms) | ${R[start_1m]} | | target < 100 |"
echo "| RSS after GET load, 100k accounts (MiB) | $(python3 -c "print(f'{${R[rss_100000]}/1024:.1f}')") | | target < 30 |"

if [ "${FLEET:-1}" != 0 ]; then
  # A cold nats-server and 2,000 users of 2,000 accounts (its own table).
  bench/fleet.sh
fi

if [ "${KV:-1}" != 0 ]; then
  # The directory store next to the JetStream KV store (its own table).
  bench/kv.sh
fi
