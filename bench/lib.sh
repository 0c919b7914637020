# Shared by bench/run.sh, bench/kv.sh and bench/fleet.sh (sourced, not run): ports, wrk runs,
# medians and the nginx reference.
# Expects LOAD_CPU and WORK to be set (and NAS, NGINX for start_nas, start_nginx).

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


# Our server on a sharded directory store, pinned to <cpu>. Expects NAS and WORK.
start_nas() { # store port cpu -> pid
  cat > "$WORK/nas.conf" <<CONF
operatorjwtpath: "$WORK/operator.jwt"
http { host: 127.0.0.1, port: $2 }
store { dir: "$1", shard: true }
logging { time: false, colors: false }
CONF
  taskset -c "$3" "$NAS" -c "$WORK/nas.conf" > /dev/null 2>> "$WORK/nas.log" &
  echo $!
}

# nginx serving a sharded store (<store>/<last 2 chars>/<key>.jwt) at /jwt/v1/accounts/<key>,
# one worker pinned to <cpu>, as a static-file reference. Expects NGINX and WORK.
start_nginx() { # store port cpu -> pid
  mkdir -p "$WORK/nginx"
  cat > "$WORK/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
$( [ "$(id -u)" = 0 ] && echo "user root;" )
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  etag on;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  server {
    listen 127.0.0.1:$2;
    # nats-server's URL resolver checks the base URL when it starts: 200 (our server lists).
    location = /jwt/v1/accounts/ { return 200 ""; }
    location ~ "^/jwt/v1/accounts/(A[A-Z2-7]{53}([A-Z2-7]{2}))$" {
      default_type application/jwt;
      alias $1/\$2/\$1.jwt;
    }
  }
}
CONF
  taskset -c "$3" "$NGINX" -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" > /dev/null 2>&1 &
  echo $!
}
