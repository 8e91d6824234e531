# Walk every profile with first: 500, one client.
# Sourced by benches/run (see "Scenarios" there): it runs in the harness's shell, with its
# servers, helpers (wrk_run, pgbench_run, measured, record) and settings.

say "walk every profile, first: 500, one client"
$PY "$BENCHES/bench.py" iterate --url "$US_URL" --token-file "$TOKEN_FILE" --expect "$PROFILES" \
  > "$W/iterate.json"
record scenario=iterate target=usersvc round=1 --json "$W/iterate.json"
