#!/usr/bin/env bash
# Runs the exactly-once scenarios (test/integration/eos-*.test.ts) N times in a row against the
# local broker (started/reused by the integration global setup) and stops at the first failure.
# Usage: test/eos/repeat.sh [N=5] [vitest file filter...]
# Logs: .cache/eos-repeat/run-<i>.log; a summary line per run on stdout.
set -u
cd "$(dirname "$0")/../.."
N="${1:-5}"
shift || true
FILES=("$@")
[ ${#FILES[@]} -eq 0 ] && FILES=(test/integration/eos-)
mkdir -p .cache/eos-repeat
for i in $(seq 1 "$N"); do
  start=$(date +%s)
  EOS_VERBOSE=1 npx vitest run --project integration "${FILES[@]}" > ".cache/eos-repeat/run-$i.log" 2>&1
  rc=$?
  secs=$(( $(date +%s) - start ))
  summary=$(grep -E '^vitest: ' ".cache/eos-repeat/run-$i.log" | tail -1)
  echo "run $i/$N: exit $rc in ${secs}s — ${summary:-no summary}"
  grep -E '^\[eos\]' ".cache/eos-repeat/run-$i.log" | sed 's/^/    /'
  if [ $rc -ne 0 ]; then
    echo "run $i failed; see .cache/eos-repeat/run-$i.log"
    exit $rc
  fi
done
echo "all $N runs passed"
