# userInfo p99 alone and while clients call verifyPassword (needs the logins of verify.sh).
# Sourced by benches/run (see "Scenarios" there): it runs in the harness's shell, with its
# servers, helpers (wrk_run, pgbench_run, measured, record) and settings.

say "userInfo p99, idle and while $BURST_CLIENTS clients call verifyPassword ($ROUNDS rounds)"
flood_idle() { wrk_run "$W/flood-idle-$1" "$DURATION" "$CONC" "$US_URL" ids "$BODIES/userinfo.json"
               record scenario=flood target=idle round="$1" --wrk "$W/flood-idle-$1"; }
flood_busy() {
  wrk_logins "$W/flood-verifies-$1" $((DURATION + LEAD + 1)) "$BURST_CLIENTS" "$US_URL" ids "$BODIES/verify.json" &
  BG_PID=$!
  sleep "$LEAD"   # the hashers are busy before the measurement starts
  wrk_run "$W/flood-busy-$1" "$DURATION" "$CONC" "$US_URL" ids "$BODIES/userinfo.json"
  wait "$BG_PID" || fail "the verifyPassword load failed"
  BG_PID=
  record scenario=flood target=flood round="$1" --wrk "$W/flood-busy-$1"
  record scenario=flood target=verifies round="$1" --wrk "$W/flood-verifies-$1"
}
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then flood_idle "$r"; flood_busy "$r"; else flood_busy "$r"; flood_idle "$r"; fi
done
