# userInfo p99 alone and while clients create users.
# Sourced by benches/run (see "Scenarios" there): it runs in the harness's shell, with its
# servers, helpers (wrk_run, pgbench_run, measured, record) and settings.

say "userInfo p99, idle and while $BURST_CLIENTS clients create users ($ROUNDS rounds)"
export BENCH_RUN_TAG
burst_idle() { wrk_run "$W/burst-idle-$1" "$DURATION" "$CONC" "$US_URL" ids "$BODIES/userinfo.json"
               record scenario=burst target=idle round="$1" --wrk "$W/burst-idle-$1"; }
burst_busy() {
  BENCH_RUN_TAG="burst-$$-$1"
  wrk_run "$W/burst-creates-$1" $((DURATION + LEAD + 1)) "$BURST_CLIENTS" "$US_URL" unique "$BODIES/create.json" &
  BG_PID=$!
  sleep "$LEAD"   # the hashers are busy before the measurement starts
  wrk_run "$W/burst-busy-$1" "$DURATION" "$CONC" "$US_URL" ids "$BODIES/userinfo.json"
  wait "$BG_PID" || fail "the create load failed"
  BG_PID=
  record scenario=burst target=burst round="$1" --wrk "$W/burst-busy-$1"
  record scenario=burst target=creates round="$1" --wrk "$W/burst-creates-$1"
}
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then burst_idle "$r"; burst_busy "$r"; else burst_busy "$r"; burst_idle "$r"; fi
done
