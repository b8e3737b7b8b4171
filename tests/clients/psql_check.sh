#!/usr/bin/env bash
# psql against a running `rebuy serve`: meta-commands and COPY. Usage: psql_check.sh PORT
set -u
PORT=$1
failures=0
run() { psql -X -h 127.0.0.1 -p "$PORT" -U analyst -d rebuy -v ON_ERROR_STOP=1 "$@" 2>&1; }
expect() { # name, pattern, psql args...
  local name=$1 pattern=$2; shift 2
  local out
  out=$(run "$@")
  if [ $? -eq 0 ] && grep -qE "$pattern" <<<"$out"; then
    echo "ok   psql $name"
  else
    echo "FAIL psql $name"; echo "$out" | head -20; failures=$((failures + 1))
  fi
}
expect '\dt lists tables' 'orders.*table' -c '\dt'
expect '\dv lists views' 'customer_rfm.*view' -c '\dv'
expect '\d orders describes columns' 'order_id' -c '\d orders'
expect '\l lists the database' 'rebuy' -c '\l'
expect '\dn lists schemas' 'public' -c '\dn'
expect '\df lists rebuy functions with their types' 'public +\| rfm_segment +\| text +\| r bigint, f bigint, m bigint +\| func' -c '\df'
expect '\df rfm_segment' 'rfm_segment.*r bigint, f bigint, m bigint' -c '\df rfm_segment'
expect '\df+ rfm_segment describes it' 'immutable.*RFM segment' -c '\df+ rfm_segment'
expect '\df bgnbd_fit is an aggregate' 'bgnbd_fit +\| json +\|.*\| agg' -c '\df bgnbd_fit'
expect '\x expanded output' 'customer_id +\| ' -c '\x' -c 'SELECT customer_id FROM customer_summary LIMIT 1'
expect 'COPY TO STDOUT' '^[^,]+,[0-9.]+$' -c 'COPY (SELECT order_id, amount FROM orders LIMIT 3) TO STDOUT WITH (FORMAT csv)'
expect '\copy' '^[^[:space:]]+[[:space:]]+[A-Za-z_]+$' -c '\copy (SELECT order_id, region FROM orders LIMIT 3) to stdout'
expect 'version()' 'PostgreSQL 16' -c 'SELECT version()'
expect 'sslmode=prefer falls back or uses TLS' '1' -c 'SELECT 1'
if [ "$failures" -gt 0 ]; then echo "$failures psql check(s) failed"; exit 1; fi
echo "all psql checks passed"
