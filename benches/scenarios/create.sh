# createUserEmailPassword (and a baseline build's) vs the bare argon2id rate.
# Sourced by benches/run (see "Scenarios" there): it runs in the harness's shell, with its
# servers, helpers (wrk_run, pgbench_run, measured, record) and settings.

say "createUserEmailPassword vs bare argon2id ($ROUNDS rounds, $CONC connections, $CORES hashing threads)"
BENCH_RUN_TAG="warm-$$"
wrk_run "$W/warm" "$WARMUP" "$CONC" "$US_URL" unique "$BODIES/create.json"
if [ -n "$BASE_BIN" ]; then
  BENCH_RUN_TAG="warm-base-$$"
  wrk_run "$W/warm" "$WARMUP" "$CONC" "$BASE_URL" unique "$BODIES/create.json"
fi
cr_measured() { BENCH_RUN_TAG="create-$$-$1"
                measured wrk_run "$W/create-$1" "$DURATION" "$CONC" "$US_URL" unique "$BODIES/create.json"
                record scenario=create target=usersvc round="$1" --wrk "$W/create-$1" "${CPU[@]}"; }
cr_baseline() { BENCH_RUN_TAG="create-base-$$-$1"
                USERSVC_PID=$BASE_PID measured wrk_run "$W/create-base-$1" "$DURATION" "$CONC" "$BASE_URL" unique "$BODIES/create.json"
                record scenario=create target=baseline round="$1" --wrk "$W/create-base-$1" "${CPU[@]}"; }
cr_usersvc() {
  if [ -z "$BASE_BIN" ]; then cr_measured "$1"
  elif [ $(($1 % 2)) = 1 ]; then cr_measured "$1"; cr_baseline "$1"
  else cr_baseline "$1"; cr_measured "$1"; fi
}
cr_argon2() { measured timeout $((DURATION + 60)) "$A2_BIN" --threads "$CORES" --seconds "$DURATION" > "$W/argon2-$1"
              record scenario=create target=argon2 round="$1" --json "$W/argon2-$1" "${CPU[@]}"; }
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then cr_usersvc "$r"; cr_argon2 "$r"; else cr_argon2 "$r"; cr_usersvc "$r"; fi
done
