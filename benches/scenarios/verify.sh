# verifyPassword vs bare argon2id verification.
# Sourced by benches/run (see "Scenarios" there): it runs in the harness's shell, with its
# servers, helpers (wrk_run, pgbench_run, measured, record) and settings.

say "verifyPassword vs bare argon2id verification ($ROUNDS rounds, $CONC connections, $CORES hashing threads)"
# The EMAIL identities of the userInfo ids get one argon2id hash (the same parameters) of a known
# password, so that every login succeeds; logins are spread over them, far fewer at once per
# identity than login.max_failures.
LOGIN_PHC=$("$A2_BIN" --phc "$($PY -B "$BENCHES/bench.py" login-password)")
psql_ -d bench -v phc="$LOGIN_PHC" <<SQL
UPDATE identities i SET password_hash = :'phc' FROM bench.ids b
 WHERE i.app_id = '$APP' AND i.profile_id = b.profile_id AND i.kind = 'EMAIL';
SQL
LOGINS_FILE="$OUT/logins.txt"
psql_ -d bench -Atc "SELECT i.external_id FROM identities i JOIN bench.ids b USING (profile_id)
  WHERE i.app_id = '$APP' AND i.kind = 'EMAIL' ORDER BY b.rank" > "$LOGINS_FILE"
[ -s "$LOGINS_FILE" ] || fail "no logins for the verifyPassword scenario"
wrk_logins() { IDS_FILE="$LOGINS_FILE" wrk_run "$@"; }   # ids mode, drawing from the logins
wrk_logins "$W/warm" "$WARMUP" "$CONC" "$US_URL" ids "$BODIES/verify.json"
vf_usersvc() { measured wrk_logins "$W/verify-$1" "$DURATION" "$CONC" "$US_URL" ids "$BODIES/verify.json"
               record scenario=verify target=usersvc round="$1" --wrk "$W/verify-$1" "${CPU[@]}"; }
vf_argon2() { measured timeout $((DURATION + 60)) "$A2_BIN" --verify --threads "$CORES" --seconds "$DURATION" > "$W/argon2-verify-$1"
              record scenario=verify target=argon2 round="$1" --json "$W/argon2-verify-$1" "${CPU[@]}"; }
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then vf_usersvc "$r"; vf_argon2 "$r"; else vf_argon2 "$r"; vf_usersvc "$r"; fi
done
