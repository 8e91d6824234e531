# What row-level security costs: userInfo and creates with the server's role usersvc_server under
# the tenant policies (migrations/2026-12-07-000003_row_level_security), and the same build with
# that role altered to BYPASSRLS, in rounds whose order alternates.
# Sourced by benches/run (see "Scenarios" there): it runs in the harness's shell, with its
# servers, helpers (wrk_run, pgbench_run, measured, record) and settings.
#
# The role is altered through psql on this private cluster (the server has no such setting), and
# usersvc is restarted after each change: a pooled connection's prepared statements keep the
# plans made under the role's earlier rights. The server's own work is the same in both modes
# (it still calls usersvc_enter for every request); only the policies' checks go.
#
# With a baseline build, its userInfo is measured too, back to back with usersvc's in BYPASSRLS
# mode (alternating which goes first): the two request paths compared with the tenant policies
# aside. The baseline is restarted after the role's change to BYPASSRLS, so a baseline that works
# through usersvc_server runs without the policies as well; one from before row-level security
# has none anyway.

say "row-level security: userInfo and creates under RLS and with BYPASSRLS ($ROUNDS rounds, $CONC connections)"
rls_mode() { # rls|bypassrls: alter the role, restart usersvc, check that the policies (do not) apply
  local attr=NOBYPASSRLS want=0
  [ "$1" = rls ] || { attr=BYPASSRLS; want=$PROFILES; }
  psql_ -d bench -c "ALTER ROLE usersvc_server $attr"
  stop_usersvc
  start_usersvc
  if [ "$1" = bypassrls ] && [ -n "$BASE_BIN" ]; then stop_baseline; start_baseline; fi
  # With no usersvc.apps set, the policies show usersvc_server no profile at all.
  local seen
  seen=$(psql_ -d bench -Atc "SET ROLE usersvc_server; SELECT count(*) FROM profiles WHERE app_id = '$APP'")
  if [ "$1" = rls ]; then [ "$seen" = 0 ] || fail "RLS mode: usersvc_server sees $seen profiles"
  else [ "$seen" -ge "$want" ] || fail "BYPASSRLS mode: usersvc_server sees $seen profiles"; fi
}
rls_userinfo() { # mode round
  measured wrk_run "$W/rls-ui-$1-$2" "$DURATION" "$CONC" "$US_URL" ids "$BODIES/userinfo.json"
  record scenario=rls-userinfo target="$1" round="$2" --wrk "$W/rls-ui-$1-$2" "${CPU[@]}"
}
rls_userinfo_baseline() { # round
  USERSVC_PID=$BASE_PID measured wrk_run "$W/rls-ui-base-$1" "$DURATION" "$CONC" "$BASE_URL" ids "$BODIES/userinfo.json"
  record scenario=rls-userinfo target=baseline-bypassrls round="$1" --wrk "$W/rls-ui-base-$1" "${CPU[@]}"
}
rls_round() { # mode round
  rls_mode "$1"
  wrk_run "$W/warm" "$WARMUP" "$CONC" "$US_URL" ids "$BODIES/userinfo.json"
  if [ "$1" = rls ] || [ -z "$BASE_BIN" ]; then rls_userinfo "$1" "$2"
  else
    wrk_run "$W/warm" "$WARMUP" "$CONC" "$BASE_URL" ids "$BODIES/userinfo.json"
    if [ $(($2 % 2)) = 1 ]; then rls_userinfo "$1" "$2"; rls_userinfo_baseline "$2"
    else rls_userinfo_baseline "$2"; rls_userinfo "$1" "$2"; fi
  fi
  BENCH_RUN_TAG="rls-warm-$$-$1-$2"
  wrk_run "$W/warm" "$WARMUP" "$CONC" "$US_URL" unique "$BODIES/create.json"
  BENCH_RUN_TAG="rls-$$-$1-$2"
  measured wrk_run "$W/rls-cr-$1-$2" "$DURATION" "$CONC" "$US_URL" unique "$BODIES/create.json"
  record scenario=rls-create target="$1" round="$2" --wrk "$W/rls-cr-$1-$2" "${CPU[@]}"
}
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then rls_round rls "$r"; rls_round bypassrls "$r"
  else rls_round bypassrls "$r"; rls_round rls "$r"; fi
done
rls_mode rls   # as the migration left it
stop_baseline  # the scenarios after this one measure usersvc alone
