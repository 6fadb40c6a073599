#!/usr/bin/env bash
# fuzz.sh - runs each libFuzzer target (build-fuzz/fuzz-<name>, built by `make fuzz`) for
# FUZZ_SECONDS, seeded from tests/fixtures and from tests/fuzz/regressions/<name>/ (inputs that
# once crashed; each is run again first). Seeds, the grown corpus and crash files stay in
# build-fuzz/ and are never committed. Exits non-zero when a target crashes or leaks; the crash
# input is kept as build-fuzz/crashes/<name>-crash-*: copy a small one to
# tests/fuzz/regressions/<name>/ with the fix.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
out=build-fuzz
fix=tests/fixtures
targets=("$@")
[ ${#targets[@]} -gt 0 ] || { echo "usage: fuzz.sh TARGET..." >&2; exit 64; }

# Seeds for one target into $out/corpus/<name>/ (made anew from the fixtures each run, added to
# what earlier runs grew there).
seed() {
  local name=$1 dir=$out/corpus/$1
  mkdir -p "$dir"
  case $name in
    webhook_sf) cp $fix/salesforce/*.xml "$dir"/ ;;
    webhook_hs) cp $fix/hubspot/webhook-*.json "$dir"/ ;;
    mapping) cp $fix/mappings/*.json "$dir"/ ;;
    config) cp $fix/config/*.env "$dir"/ ;;
    soql)
      # Every string value of the JSON fixtures, one file each.
      local i=0
      while IFS= read -r s; do
        printf '%s' "$s" > "$dir/string-$i"; i=$((i + 1))
      done < <(jq -r '.. | strings' $fix/hubspot/*.json $fix/mappings/*.json | head -200)
      printf "O'Brien \\\\ \"quoted\"\n" > "$dir/string-quotes" ;;
    hs_signature)
      # One input per vector: five header lines (v3 signature, timestamp, v1/v2 signature,
      # version, URI) and the body.
      local n
      n=$(jq '.vectors | length' $fix/hubspot/signature-vectors.json)
      for ((i = 0; i < n; i++)); do
        jq -j --argjson i "$i" '.vectors[$i] |
          (if .version == "v3" then .signature else "" end) + "\n" +
          ((.timestamp // "") | tostring) + "\n" +
          (if .version != "v3" then .signature else "" end) + "\n" +
          .version + "\n" +
          ((.wire_uri // .uri // "/webhooks/hubspot") | sub("^https?://[^/]*"; "")) + "\n" +
          .body' $fix/hubspot/signature-vectors.json > "$dir/vector-$i"
      done ;;
    *) echo "fuzz: no seeds known for $name" >&2; exit 1 ;;
  esac
}

passed=0
failed=0
mkdir -p "$out/crashes"
for name in "${targets[@]}"; do
  bin=$out/fuzz-$name
  [ -x "$bin" ] || { echo "fuzz: $bin is not built (make fuzz)" >&2; exit 1; }
  seed "$name"
  dirs=("$out/corpus/$name")
  reg=tests/fuzz/regressions/$name
  if [ -d "$reg" ] && [ -n "$(ls -A "$reg")" ]; then dirs+=("$reg"); fi
  log=$out/fuzz-$name.log
  # -close_fd_mask=2: the targets' own stderr (config problems) is dropped; libFuzzer and the
  # sanitizers keep reporting on theirs.
  if "$bin" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -close_fd_mask=2 -print_final_stats=1 -artifact_prefix="$out/crashes/$name-" \
      "${dirs[@]}" > "$log" 2>&1; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    echo "fuzz $name: $runs runs in ${FUZZ_SECONDS}s, no crash"
    passed=$((passed + 1))
  else
    echo "fuzz $name: FAILED (log: $log)"
    grep -E 'ERROR|SUMMARY|Test unit written|runtime error' "$log" | head -20 || tail -20 "$log"
    failed=$((failed + 1))
  fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
