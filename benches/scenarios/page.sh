# Deep page vs first page: usersvc's keyset paging, and PostGraphile's offset paging for contrast.
# Sourced by benches/run (see "Scenarios" there): it runs in the harness's shell, with its
# servers, helpers (wrk_run, pgbench_run, measured, record) and settings.

say "deep page vs first page ($ROUNDS rounds, both at once, $((CONC / 2)) connections each)"
$PY "$BENCHES/bench.py" deep-cursor --url "$US_URL" --postgraphile "$PGL_URL" \
  --token-file "$TOKEN_FILE" --profiles "$PROFILES" --dir "$BODIES" | sed 's/^/  /'
PAGE_SECS=$(( DURATION * 2 / 3 )); [ "$PAGE_SECS" -ge 1 ] || PAGE_SECS=1
wrk_run "$W/warm" "$WARMUP" "$CONC" "$US_URL" fixed "$BODIES/page_first.json"
wrk_run "$W/warm" "$WARMUP" "$CONC" "$US_URL" fixed "$BODIES/page_deep.json"
# The two pages are measured at the same time, half of the connections each: whatever else
# the machine does in those seconds slows both alike, so their ratio is the page's own.
HALF=$(( CONC / 2 ))
for r in $(seq "$ROUNDS"); do
  wrk_run "$W/page-usersvc-first-$r" "$DURATION" "$HALF" "$US_URL" fixed "$BODIES/page_first.json" &
  first_pid=$!
  wrk_run "$W/page-usersvc-deep-$r" "$DURATION" "$HALF" "$US_URL" fixed "$BODIES/page_deep.json" &
  deep_pid=$!
  wait "$first_pid"
  wait "$deep_pid"
  for t in first deep; do
    record scenario=page target="usersvc-$t" round="$r" connections="$HALF" --wrk "$W/page-usersvc-$t-$r"
  done
done
# PostGraphile's offset paging at the same depth, for contrast: one client (a deep offset
# scans N rows, so at 32 connections its requests would only queue), fewer rounds.
PG_PAGE_SECS=$PAGE_SECS; [ "$MODE" = smoke ] || [ "$PG_PAGE_SECS" -ge 10 ] || PG_PAGE_SECS=10
for r in $(seq $(( (ROUNDS + 1) / 2 ))); do
  for t in first deep; do
    wrk_run "$W/page-pg-$t-$r" "$PG_PAGE_SECS" 1 "$PGL_URL" fixed "$BODIES/page_${t}_pg.json"
    record scenario=page target="postgraphile-$t" round="$r" connections=1 --wrk "$W/page-pg-$t-$r"
  done
done
