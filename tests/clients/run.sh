#!/usr/bin/env bash
# The client suite: serves a copy of the fixture warehouse with `rebuy serve` and checks it
# with psql, psycopg 3, psycopg2, asyncpg, SQLAlchemy, pgjdbc and node-postgres, then with TLS
# (sslmode=require). Installs the clients it needs. Usage: tests/clients/run.sh [REBUY_BINARY]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${1:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/rebuy}
CLIENTS=$ROOT/tests/clients
WORK=$(mktemp -d)
SERVER_PID=
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

# --- clients -------------------------------------------------------------------------------
python3 -c 'import psycopg, psycopg2, asyncpg, sqlalchemy' 2>/dev/null ||
  python3 -m pip install -q "psycopg[binary]>=3.2" "psycopg2-binary>=2.9" "asyncpg>=0.29" "sqlalchemy>=2.0"
JDBC_JAR=/usr/share/java/postgresql.jar
if [ ! -f "$JDBC_JAR" ]; then
  (apt-get update -qq && apt-get install -y -qq libpostgresql-jdbc-java >/dev/null) ||
    (sudo apt-get update -qq && sudo apt-get install -y -qq libpostgresql-jdbc-java >/dev/null)
fi
NODE_DIR=${REBUY_NODE_CACHE:-/var/tmp/rebuy-node-clients}
[ -d "$NODE_DIR/node_modules/pg" ] || npm install --silent --no-audit --no-fund --prefix "$NODE_DIR" pg@8 >/dev/null

# --- server --------------------------------------------------------------------------------
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cp -r "$ROOT/data/fixture/warehouse" "$WORK/data"
command -v openssl >/dev/null || apt-get install -y -qq openssl >/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
  -keyout "$WORK/server.key" -out "$WORK/server.crt" 2>/dev/null
cat > "$WORK/data/rebuy.toml" <<TOML
[server]
listen = "127.0.0.1:$port"
auth = "trust"
tls_cert = "$WORK/server.crt"
tls_key = "$WORK/server.key"
TOML
REBUY_LOG=rebuy=info "$BIN" --data "$WORK/data" serve 2>"$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 1 600); do
  (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
  sleep 0.1
done

failed=0
echo "== psql"; "$CLIENTS/psql_check.sh" "$port" || failed=1
echo "== TLS"
if PGSSLMODE=require psql -X -h 127.0.0.1 -p "$port" -U analyst -d rebuy -Atc "SELECT 'tls-ok'" | grep -q tls-ok; then
  echo "ok   psql sslmode=require"
else echo "FAIL psql sslmode=require"; failed=1; fi
echo "== Python"; python3 "$CLIENTS/python_clients.py" "$port" || failed=1
echo "== JDBC"; java -cp "$JDBC_JAR" "$CLIENTS/JdbcCheck.java" "$port" || failed=1
echo "== node-postgres"; NODE_PATH="$NODE_DIR/node_modules" node "$CLIENTS/node_check.js" "$port" || failed=1
if ! kill -0 "$SERVER_PID" 2>/dev/null; then echo "FAIL the server died"; failed=1; fi
if [ "$failed" -ne 0 ]; then echo "--- server log (tail)"; grep -v " query " "$WORK/server.log" | tail -30; exit 1; fi
echo "client suite passed"
