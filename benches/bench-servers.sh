# Sourced by the bench scripts: the two servers they measure against, on loopback.
# Needs WORK (a temp dir the caller removes) and PIDS (an array the caller's
# cleanup kills, by PID). Sets FIXTURE or NGINX to the server's URL.

# The built-in fixture of build $1, over TCP.
start_fixture() {
    "$1" fixture --listen tcp:127.0.0.1:0 --ready-file "$WORK/fixture.addr" >/dev/null &
    PIDS+=($!)
    for _ in $(seq 100); do [ -s "$WORK/fixture.addr" ] && break; sleep 0.05; done
    FIXTURE="http://$(sed 's/^tcp://' "$WORK/fixture.addr")/"
}

# nginx answering `return 200` from a private prefix, one worker.
start_nginx() {
    local port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    mkdir -p "$WORK/nginx"
    cat > "$WORK/nginx/nginx.conf" <<CONF
$( [ "$(id -u)" = 0 ] && echo "user root root;" )
worker_processes 1;
pid "$WORK/nginx/nginx.pid";
error_log "$WORK/nginx/error.log" warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path "$WORK/nginx/cb"; proxy_temp_path "$WORK/nginx/p";
  fastcgi_temp_path "$WORK/nginx/f"; uwsgi_temp_path "$WORK/nginx/u"; scgi_temp_path "$WORK/nginx/s";
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$port; location / { return 200 "ok\n"; } }
}
CONF
    nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" -g 'daemon off;' &
    PIDS+=($!)
    for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && break; sleep 0.05; done
    NGINX="http://127.0.0.1:$port/"
}
