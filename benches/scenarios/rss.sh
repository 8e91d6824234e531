# Memory: peak RSS of a freshly started usersvc under load.
# Sourced by benches/run (see "Scenarios" there): it runs in the harness's shell, with its
# servers, helpers (wrk_run, pgbench_run, measured, record) and settings.

say "memory: peak RSS of a fresh usersvc under $RSS_CONC connections"
stop_pid "$BASE_PID"; BASE_PID=
stop_usersvc
start_usersvc
wrk_run "$W/rss" $((DURATION + WARMUP)) "$RSS_CONC" "$US_URL" ids "$BODIES/userinfo.json" &
BG_PID=$!
peak=0
while kill -0 "$BG_PID" 2>/dev/null; do
  hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$USERSVC_PID/status")
  [ "$hwm" -le "$peak" ] || peak=$hwm
  sleep 0.2
done
wait "$BG_PID" || fail "the RSS load failed"
BG_PID=
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$USERSVC_PID/status")
rss=$(awk '/^VmRSS/ {print $2}' "/proc/$USERSVC_PID/status")
[ "$hwm" -le "$peak" ] || peak=$hwm
rps=$($PY "$BENCHES/bench.py" parse-wrk "$W/rss" | $PY -c 'import json,sys; d=json.load(sys.stdin); print(d["rps"]) if not d["failed"] else sys.exit("failed requests")')
echo "{\"vmhwm_mib\": $($PY -c "print(round($peak/1024,1))"), \"vmrss_mib\": $($PY -c "print(round($rss/1024,1))"), \"rps\": $rps, \"connections\": $RSS_CONC}" > "$W/rss.json"
record scenario=rss target=usersvc round=1 --json "$W/rss.json"
