# Memory of the usersvc that served the read scenarios (reported with scenarios/rss.py).
# Sourced by benches/run (see "Scenarios" there): it runs in the harness's shell, with its
# servers, helpers (wrk_run, pgbench_run, measured, record) and settings.

say "memory: RSS of the usersvc that served the reads so far (before any hashing buffers)"
# Read before /metrics is scraped: a scrape also tidies the recorder's queues.
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$USERSVC_PID/status")
rss=$(awk '/^VmRSS/ {print $2}' "/proc/$USERSVC_PID/status")
served=$($PY -c '
import sys, urllib.request
text = urllib.request.urlopen(sys.argv[1], timeout=10).read().decode()
print(int(sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines() if l.startswith("usersvc_http_requests_total{"))))
' "http://127.0.0.1:$US_PORT/metrics") || fail "cannot read /metrics"
echo "{\"vmhwm_mib\": $($PY -c "print(round($hwm/1024,1))"), \"vmrss_mib\": $($PY -c "print(round($rss/1024,1))"), \"requests\": $served}" > "$W/rss-long.json"
record scenario=rss-long target=usersvc round=1 --json "$W/rss-long.json"
