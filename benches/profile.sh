# Profiles (benches/run --profile; not part of the figures): statements and perf.
# Sourced by benches/run (see "Scenarios" there): it runs in the harness's shell, with its
# servers, helpers (wrk_run, pgbench_run, measured, record) and settings.

  say "profiles: the statements of 40 requests of each kind, perf under load"
  P="$OUT/profile"
  rm -rf "$P" && mkdir -p "$P"
  # Every statement PostgreSQL receives (parse/bind/execute) for one request of each kind.
  psql_ -d bench -c "ALTER SYSTEM SET log_min_duration_statement = 0" -c "SELECT pg_reload_conf()" >/dev/null
  sleep 0.5
  log_from=$(wc -l < "$PGROOT/postgres.log")
  for kind in userinfo page_first page_deep create; do
    [ -f "$BODIES/$kind.json" ] || continue   # written by a scenario this run left out
    psql_ -d bench -c "SELECT 'bench-marker $kind'" >/dev/null
    $PY - "$US_URL" "$TOKEN_FILE" "$BODIES/$kind.json" "$IDS_FILE" "$kind" <<'EOF2'
import sys, urllib.request
url, token, body, ids, kind = sys.argv[1:6]
token = open(token).read().strip()
body = open(body).read()
ids = [l.strip() for l in open(ids) if l.strip()]
n = 40   # more than the pool's 16 connections
for i in range(n):
    b = body.replace("__ID__", ids[i % len(ids)]).replace("__N__", f"profile-{i}")
    req = urllib.request.Request(url, data=b.encode(), headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    urllib.request.urlopen(req, timeout=60).read()
EOF2
  done
  psql_ -d bench -c "SELECT 'bench-marker end'" >/dev/null
  sleep 0.5
  psql_ -d bench -c "ALTER SYSTEM RESET log_min_duration_statement" -c "SELECT pg_reload_conf()" >/dev/null
  tail -n +"$((log_from + 1))" "$PGROOT/postgres.log" | $PY "$BENCHES/bench.py" statements > "$P/statements.txt"
  sed -n '1,/^$/p' "$P/statements.txt" | sed 's/^/  /'
  note "every statement PostgreSQL received: $P/statements.txt"
  if command -v perf >/dev/null && perf --version >/dev/null 2>&1; then
    prof() { # name mode body
      wrk_run "$W/prof-$1" $((DURATION + 3)) "$CONC" "$US_URL" "$2" "$3" &
      BG_PID=$!
      sleep 1
      perf record -F 499 --call-graph dwarf,16384 -p "$USERSVC_PID" -o "$P/$1.perf.data" \
        -- sleep "$DURATION" >/dev/null 2>&1 || true
      wait "$BG_PID" || fail "the load under perf failed"
      BG_PID=
      perf report -i "$P/$1.perf.data" --no-children --sort dso,symbol -g none --stdio \
        2>/dev/null | grep '%' > "$P/$1.top.txt" || true
      perf script -i "$P/$1.perf.data" 2>/dev/null | $PY "$BENCHES/bench.py" fold > "$P/$1.folded"
      note "$1: $P/$1.top.txt (self time), $P/$1.folded (for flamegraph.pl or inferno-flamegraph)"
    }
    prof userinfo ids "$BODIES/userinfo.json"
    BENCH_RUN_TAG="prof-$$"
    prof create unique "$BODIES/create.json"
  else
    note "perf is not available: no CPU profiles (Debian: apt-get install linux-perf)"
  fi
