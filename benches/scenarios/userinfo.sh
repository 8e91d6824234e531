# userInfo with identities: usersvc (and a baseline build) vs PostGraphile v4 and v5 vs pgbench.
# Sourced by benches/run (see "Scenarios" there): it runs in the harness's shell, with its
# servers, helpers (wrk_run, pgbench_run, measured, record) and settings.

say "userInfo with identities: usersvc vs PostGraphile v4 and v5 vs pgbench ($ROUNDS rounds of ${DURATION} s, $CONC connections)"
wrk_run "$W/warm" "$WARMUP" "$CONC" "$US_URL" ids "$BODIES/userinfo.json"
[ -z "$BASE_BIN" ] || wrk_run "$W/warm" "$WARMUP" "$CONC" "$BASE_URL" ids "$BODIES/userinfo.json"
wrk_run "$W/warm" "$WARMUP" "$CONC" "$PGL_URL" ids "$BODIES/userinfo_pg.json"
wrk_run "$W/warm" "$WARMUP" "$CONC" "$PGL5_URL" ids "$BODIES/userinfo_pg.json"
pgbench_run "$W/warm" "$WARMUP"
ui_measured() { measured wrk_run "$W/ui-us-$1" "$DURATION" "$CONC" "$US_URL" ids "$BODIES/userinfo.json"
                record scenario=userinfo target=usersvc round="$1" --wrk "$W/ui-us-$1" "${CPU[@]}"; }
ui_baseline() { USERSVC_PID=$BASE_PID measured wrk_run "$W/ui-base-$1" "$DURATION" "$CONC" "$BASE_URL" ids "$BODIES/userinfo.json"
                record scenario=userinfo target=baseline round="$1" --wrk "$W/ui-base-$1" "${CPU[@]}"; }
# With a baseline, the two builds run back to back, in an order that alternates by round.
ui_usersvc() {
  if [ -z "$BASE_BIN" ]; then ui_measured "$1"
  elif [ $(($1 % 2)) = 1 ]; then ui_measured "$1"; ui_baseline "$1"
  else ui_baseline "$1"; ui_measured "$1"; fi
}
# PostGraphile v4 and v5 take the same request (sql/postgraphile.sql gives both the same schema).
ui_pgl() { measured wrk_run "$W/ui-pgl-$1" "$DURATION" "$CONC" "$PGL_URL" ids "$BODIES/userinfo_pg.json"
           record scenario=userinfo target=postgraphile round="$1" --wrk "$W/ui-pgl-$1" "${CPU[@]}"; }
ui_pgl5() { measured wrk_run "$W/ui-pgl5-$1" "$DURATION" "$CONC" "$PGL5_URL" ids "$BODIES/userinfo_pg.json"
            record scenario=userinfo target=postgraphile5 round="$1" --wrk "$W/ui-pgl5-$1" "${CPU[@]}"; }
ui_pgbench() { measured pgbench_run "$W/ui-pgb-$1" "$DURATION"
               record scenario=userinfo target=pgbench round="$1" --pgbench "$W/ui-pgb-$1" "${CPU[@]}"; }
UI_CONTENDERS=(ui_usersvc ui_pgl ui_pgl5 ui_pgbench)
for r in $(seq "$ROUNDS"); do
  for i in "${!UI_CONTENDERS[@]}"; do   # rotate who goes first
    "${UI_CONTENDERS[$(( (i + r - 1) % ${#UI_CONTENDERS[@]} ))]}" "$r"
  done
done
