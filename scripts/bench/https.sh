# https.sh: runs scripts/bench/https.lua against a local nginx serving TLS with keep-alive,
# with a throwaway CA and server certificate made here. usage: bash scripts/bench/https.sh
set -eu
SLUICE=${SLUICE:-./sluice}
dir=$(mktemp -d)
trap 'kill $(cat "$dir/nginx.pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$dir"' EXIT
cd "$dir"
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 \
  -subj "/CN=sluice bench CA" >/dev/null 2>&1
openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj "/CN=127.0.0.1" \
  >/dev/null 2>&1
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > ext.cnf
openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
  -out srv.pem -extfile ext.cnf >/dev/null 2>&1
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
port=$(free_port)
pport=$(free_port)
cat > nginx.conf <<CONF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$port ssl;
    ssl_certificate $dir/srv.pem;
    ssl_certificate_key $dir/srv.key;
    location / { return 200 "hello\n"; }
  }
  server {
    listen 127.0.0.1:$pport;
    location / { return 200 "hello\n"; }
  }
}
CONF
nginx -p "$dir" -c "$dir/nginx.conf"
cd - >/dev/null
for _ in $(seq 100); do [ -s "$dir/nginx.pid" ] && break; sleep 0.05; done
"$SLUICE" scripts/bench/https.lua "$dir/ca.pem" "https://127.0.0.1:$port/" \
  "http://127.0.0.1:$pport/"
