#!/usr/bin/env bash
# Fleet restart: a nats-server starts cold and N users of N distinct accounts connect at once;
# the time until all are connected, with nats-server's URL resolver pointing at our server,
# with its own full resolver holding the same JWTs in its directory (the local-disk
# reference), and with its URL resolver pointing at nginx serving the store as static files.
# A fresh nats-server for every round and mode. Installs nginx from Debian when missing.
# Loopback only; every process started here is stopped here (by PID). Prints a markdown table.
#
#   bench/fleet.sh                   # 2,000 accounts, 3 rounds (medians shown)
#   N=500 ROUNDS=1 bench/fleet.sh
#   NATS_SERVER_BIN=/usr/sbin/nats-server bench/fleet.sh
#                                    # default: 2.15.1 from target/ when scripts/test.sh
#                                    # installed it, else nats-server on PATH
#   RESOLVER_CPU=1 bench/fleet.sh    # the account server / nginx on the clients' CPU instead
#                                    # of nats-server's (default: SERVER_CPU, a shared CPU)
#
# nats-server and the account server (or nginx) share one CPU, so the time is about the sum of
# their CPU times; the table shows both (CPU ms spent during the connect storm).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-2000}
ROUNDS=${ROUNDS:-3}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
RESOLVER_CPU=${RESOLVER_CPU:-$SERVER_CPU}
WORK=${WORK:-/tmp/nas-fleet}
TIMEOUT=${TIMEOUT:-60}
MODES=(full nas nginx)

NATS_BIN=${NATS_SERVER_BIN:-}
if [ -z "$NATS_BIN" ]; then
  NATS_BIN=$PWD/target/nats-server-2.15.1/bin/nats-server
  [ -x "$NATS_BIN" ] || NATS_BIN=$(command -v nats-server || echo /usr/sbin/nats-server)
fi
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  echo "installing nginx from Debian" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get install -y nginx >/dev/null || { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y nginx >/dev/null; }
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
# N client sockets in the connector, N (plus fetches) in nats-server and the HTTP servers.
want=$((2 * N + 1024))
[ "$(ulimit -n)" -ge "$want" ] || ulimit -n "$want"

cargo build --release --quiet --bin nats-account-server --example benchgen
NAS=$PWD/target/release/nats-account-server
GEN=$PWD/target/release/examples/benchgen

rm -rf "$WORK"; mkdir -p "$WORK"; chmod 755 "$WORK"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
source bench/lib.sh

start_nats() { # mode port log -> pid; a fresh (cold) nats-server in operator mode
  local conf="$WORK/nats-$1.conf"
  {
    echo "host: 127.0.0.1"
    echo "port: $2"
    echo "operator: \"$WORK/operator.jwt\""
    echo "system_account: $SYS"
    case $1 in
      full) echo "resolver { type: full, dir: \"$FLAT\", allow_delete: false }"
            echo "resolver_preload { $SYS: \"$(cat "$WORK/sys.jwt")\" }" ;;
      nas) echo "resolver: URL(http://127.0.0.1:$PORT/jwt/v1/accounts/)" ;;
      nginx) echo "resolver: URL(http://127.0.0.1:$NPORT/jwt/v1/accounts/)" ;;
    esac
  } > "$conf"
  taskset -c "$SERVER_CPU" "$NATS_BIN" -c "$conf" > /dev/null 2>> "$3" &
  echo $!
}

# The same bytes in the page cache for every mode.
warm() { find "$@" -name '*.jwt' -print0 | xargs -0 cat > /dev/null; }
# CPU time of a process so far (user + system, all its threads, also exited ones), in ms.
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{printf "%d", ($14 + $15) * 1000 / hz}' "/proc/$1/stat"; }

"$GEN" init "$WORK"
"$GEN" fleet "$WORK" "$N" "$WORK/fleet.txt"
SYS=$(cat "$WORK/sys.pub")
# (a) the sharded store <store>/<last 2 chars>/<key>.jwt for our server (nginx serves a
# hard-linked mirror, as in bench/run.sh: same inodes, folders not watched with inotify);
# (b) the flat <dir>/<key>.jwt of nats-server's full resolver. The system account is in both
# stores: the URL resolver fetches it too.
STORE="$WORK/store"; FLAT="$WORK/flat"; MIRROR="$WORK/mirror"
mkdir -p "$STORE" "$FLAT"
{ echo "$SYS $(cat "$WORK/sys.jwt")"; cut -d' ' -f1,2 "$WORK/fleet.txt"; } | while read -r key token; do
  mkdir -p "$STORE/${key:54}"
  printf '%s' "$token" > "$STORE/${key:54}/$key.jwt"
  printf '%s' "$token" > "$FLAT/$key.jwt"
done
cp -al "$STORE" "$MIRROR"; chmod -R a+rX "$STORE" "$MIRROR"

PORT=$(free_port); PID=$(start_nas "$STORE" "$PORT" "$RESOLVER_CPU"); pids+=("$PID"); wait_port "$PORT"
NPORT=$(free_port); NPID=$(start_nginx "$MIRROR" "$NPORT" "$RESOLVER_CPU"); pids+=("$NPID"); wait_port "$NPORT"
curl -sf "http://127.0.0.1:$PORT/jwt/v1/accounts/$SYS" > /dev/null
curl -sf "http://127.0.0.1:$NPORT/jwt/v1/accounts/$SYS" > /dev/null
NWORKER=$(pgrep -P "$NPID" | head -1) # nginx's single worker answers the requests
declare -A SOURCE=([full]="" [nas]=$PID [nginx]=$NWORKER)

declare -A MS=() FAILED=() NCPU=() SCPU=()
for round in $(seq 1 "$ROUNDS"); do
  # The reference first, then the two URL sources in turns, so that neither always runs last.
  order=(full nas nginx); [ $((round % 2)) = 0 ] && order=(full nginx nas)
  for mode in "${order[@]}"; do
    warm "$STORE" "$FLAT"
    log="$WORK/nats-$mode-$round.log"
    CPORT=$(free_port); CPID=$(start_nats "$mode" "$CPORT" "$log"); pids+=("$CPID")
    wait_port "$CPORT"
    src=${SOURCE[$mode]}
    n0=$(cpu_ms "$CPID"); s0=$([ -n "$src" ] && cpu_ms "$src" || echo 0)
    out=$(taskset -c "$LOAD_CPU" "$GEN" connect "$WORK/fleet.txt" "127.0.0.1:$CPORT" "$TIMEOUT" 2>> "$WORK/connect.log") || true
    n1=$(cpu_ms "$CPID"); s1=$([ -n "$src" ] && cpu_ms "$src" || echo 0)
    stop "$CPID"
    NCPU[$mode]+="$((n1 - n0)) "; SCPU[$mode]+="$((s1 - s0)) "
    echo "   round $round/$ROUNDS $mode: ${out:-no output (see $WORK/connect.log)}; CPU ms: nats-server $((n1 - n0)), account source $((s1 - s0))" >&2
    # "connected <ok> of <n> in <ms> ms, <failed> failed"
    if [[ $out =~ ^connected\ ([0-9]+)\ of\ [0-9]+\ in\ ([0-9]+)\ ms,\ ([0-9]+)\ failed$ ]]; then
      MS[$mode]+="${BASH_REMATCH[2]} "
      FAILED[$mode]=$(( ${FAILED[$mode]:-0} + BASH_REMATCH[3] ))
    else
      MS[$mode]+="nan "; FAILED[$mode]=$(( ${FAILED[$mode]:-0} + N ))
    fi
  done
done
stop "$NPID"; stop "$PID"

stats() { # "ms ms ..." -> "median min max"
  python3 -c 'import statistics, sys; v = [float(x) for x in sys.argv[1:]]; print(f"{statistics.median(v):.0f} {min(v):.0f} {max(v):.0f}")' $1
}
# Each round's time over the same round's reference, the median of those: this VM's speed
# drifts over a run, and a ratio of medians would mix rounds run at different speeds.
ratio_of() { # "ms ..." "ms ..." -> median of the per-round ratios
  python3 -c 'import math, statistics, sys
a, b = ([float(x) for x in s.split()] for s in sys.argv[1:3])
r = [x / y for x, y in zip(a, b) if y and not math.isnan(x)]
print(f"{statistics.median(r):.2f}x" if r else "n/a")' "$1" "$2"
}
echo
echo "### Fleet restart: $N users of $N accounts connect at once to a cold nats-server ($("$NATS_BIN" --version); $(nproc) cores: nats-server on CPU $SERVER_CPU, the account server or nginx on CPU $RESOLVER_CPU, the clients on CPU $LOAD_CPU; median of $ROUNDS rounds)"
echo
echo "| account source of nats-server | all connected, median ms | min / max ms | failed connects | vs full resolver (median of rounds) | CPU ms: nats-server / account source |"
echo "|---|---|---|---|---|---|"
for mode in "${MODES[@]}"; do
  read -r med lo hi < <(stats "${MS[$mode]}")
  case $mode in
    full) label="full resolver, local directory (reference)" ;;
    nas) label="URL resolver → nats-account-server" ;;
    nginx) label="URL resolver → nginx (static files)" ;;
  esac
  ratio=$(ratio_of "${MS[$mode]}" "${MS[full]}")
  read -r ncpu _ < <(stats "${NCPU[$mode]}"); read -r scpu _ < <(stats "${SCPU[$mode]}")
  [ "$mode" = full ] && scpu="–" # nats-server reads its directory itself
  echo "| $label | $med | $lo / $hi | ${FAILED[$mode]} | $ratio | $ncpu / $scpu |"
done
