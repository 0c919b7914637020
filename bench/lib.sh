# Shared by bench/run.sh and bench/kv.sh (sourced, not run): ports, wrk runs and medians.
# Expects LOAD_CPU and WORK to be set.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 200); do (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; return 1; }

# wrk output → "req/s p50_ms p99_ms errors"
wrk_run() { # port conns script env...
  local port=$1 conns=$2 script=$3; shift 3
  local out
  out=$(env "$@" taskset -c "$LOAD_CPU" wrk -t1 -c"$conns" -d"${DURATION}s" --latency -s "$script" "http://127.0.0.1:$port" 2>&1)
  echo "$out" >> "$WORK/wrk.log"
  python3 - "$out" <<'PY'
import re, sys
out = sys.argv[1]
def ms(label):
    m = re.search(r"^\s*%s%%\s+([\d.]+)(us|ms|s)\s*$" % label, out, re.M)
    if not m: return float("nan")
    v, u = float(m.group(1)), m.group(2)
    return v / 1000 if u == "us" else v * 1000 if u == "s" else v
rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
e = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, errs.groups())) if errs else 0)
print(f"{float(rps.group(1)) if rps else 0:.0f} {ms('50'):.3f} {ms('99'):.3f} {e}")
PY
}


# Medians over the rounds of "req/s p50 p99 errors" lines (errors summed).
median_of() {
  python3 -c '
import statistics, sys
rows = [list(map(float, l.split())) for l in sys.stdin if l.strip()]
med = [statistics.median(c) for c in zip(*rows)]
print(f"{med[0]:.0f} {med[1]:.3f} {med[2]:.3f} {sum(r[3] for r in rows):.0f}")'
}

