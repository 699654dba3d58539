#!/usr/bin/env bash
# Redirects/s and latency of keel-shortener with wrk, against nginx returning a fixed 302 on the
# same machine (the ceiling: what HTTP on this box can do with no work per request).
#
#   bench/redirects_wrk.sh [build-dir] [seconds] [connections]
#   bench/redirects_wrk.sh build/release 10 50
#
# Both servers listen on 127.0.0.1 on free ports, in a temporary directory removed at the end.
# The shortener serves one hot link (from its in-process cache after the first request) and
# records every click (published on its bus, appended in batches to its SQLite click log), as
# in production. wrk runs 2 threads with keep-alive; the machine's cores are shared by wrk and
# the server, so read the figures as a ratio to nginx on the same box.
set -euo pipefail
build=${1:-build/release}
seconds=${2:-10}
connections=${3:-50}
shortener="$build/case_studies/url_shortener/keel-shortener"
[[ -x $shortener ]] || { echo "no $shortener: build it first (make build)" >&2; exit 1; }
for tool in wrk nginx; do
  command -v "$tool" >/dev/null || [[ -x /usr/sbin/$tool ]] ||
    { echo "$tool is missing: run scripts/bootstrap (it installs wrk and nginx-light)" >&2; exit 1; }
done
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

dir=$(mktemp -d /tmp/keel-wrk-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() {
  for _ in $(seq 100); do curl -fso /dev/null "$1" && return 0; sleep 0.1; done
  echo "server at $1 did not start" >&2; exit 1
}

# nginx: one worker per core, access log off, a fixed 302.
nport=$(free_port)
mkdir -p "$dir/nginx"
cat > "$dir/nginx/nginx.conf" <<NGINX
worker_processes auto;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $dir/nginx; proxy_temp_path $dir/nginx; fastcgi_temp_path $dir/nginx;
  uwsgi_temp_path $dir/nginx; scgi_temp_path $dir/nginx;
  server {
    listen 127.0.0.1:$nport;
    location / { return 302 https://example.com/some/long/path; }
  }
}
NGINX
"$nginx_bin" -c "$dir/nginx/nginx.conf" -g 'daemon off;' &
pids+=($!)

sport=$(free_port)
"$shortener" --listen "127.0.0.1:$sport" --db "$dir/links.db" --base-url "http://127.0.0.1:$sport" \
  --code-key bench-key >"$dir/shortener.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$nport/x"  || true
wait_http "http://127.0.0.1:$sport/healthz"
code=$(curl -fs -X POST -H 'Content-Type: application/json' \
  -d '{"url":"https://example.com/some/long/path"}' "http://127.0.0.1:$sport/api/v1/links" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["code"])')

run() {  # name url
  echo "== $1: wrk -t2 -c$connections -d${seconds}s --latency $2"
  wrk -t2 -c"$connections" -d"${seconds}s" --latency "$2" | tee "$dir/$1.txt" |
    grep -E 'Requests/sec|^ +50%|^ +99%|Non-2xx|Socket errors' || true
}
echo "machine: $(nproc) cores; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
run nginx "http://127.0.0.1:$nport/$code"
run keel-shortener "http://127.0.0.1:$sport/$code"
# The click log catches up after the run (it flushes every 250 ms): wait until the count holds.
clicks_now() {
  curl -fs "http://127.0.0.1:$sport/api/v1/links/$code" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["clicks"])'
}
start=$(date +%s.%N); last=-1; clicks=$(clicks_now)
while [[ $clicks != "$last" ]]; do sleep 1; last=$clicks; clicks=$(clicks_now); done
redirects=$(awk '/requests in/ {print $1}' "$dir/keel-shortener.txt")
echo "redirects served: $redirects; clicks in the stats: $clicks" \
     "(settled $(printf '%.0f' "$(echo "$(date +%s.%N) - $start - 1" | bc)") s after the run)"
grep -E 'dropped|click' "$dir/shortener.log" | tail -3 || true
