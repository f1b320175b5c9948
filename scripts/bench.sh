#!/usr/bin/env bash
# The benchmarks, against PostgreSQL, summarised as a table (docs/benchmarks.md).
#
# PostgreSQL is found as scripts/test.sh finds it: RECOURSE_TEST_DATABASE_URL,
# else DATABASE_URL, else the local server at 127.0.0.1:5432, database "test",
# starting a local cluster if one is installed but stopped. Unlike the tests,
# the benchmarks never skip: no PostgreSQL is an error.
#
#   scripts/bench.sh                 every benchmark, COUNT runs each
#   COUNT=5 scripts/bench.sh         more runs (default 3; the table shows medians)
#   BENCH=Intake scripts/bench.sh    only benchmarks whose name matches
#   BENCH_OUT=out.txt scripts/bench.sh   keep the raw `go test` output (benchstat-ready)
#   scripts/bench.sh -cpuprofile cpu.out   extra arguments go to `go test`
#
# Knobs of the intake benchmark (RECOURSE_BENCH_*) are documented in
# webhooks/intake_bench_test.go and docs/benchmarks.md.
#
# Then, once (not COUNT times), the issue-11 comparison from outside: the real
# binary against the hand-written peer (bench/intake), short by default:
#   BENCH=Peer scripts/bench.sh      only that one
#   PEER_FLAGS='-c 8,32,128 -rounds 5 -events 5000 -profile-c 32 -e2e 10m' scripts/bench.sh
#                                    the full run of docs/benchmarks.md (about 15 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."

# One line per benchmark: <package> <benchmark regexp> [benchtime]. Add new ones here.
BENCHMARKS=(
  "./webhooks/ ^BenchmarkIntake$"
  "./cases/ ^BenchmarkCaseList$ 300x"
  "./disputes/ ^BenchmarkDisputeStats$ 20x"
  "./disputes/ ^BenchmarkFactsPut1000$ 20x"
  "./web/ ^BenchmarkConsolePages$ 200x"
  "./reports/ ^BenchmarkReports$ 5x"
)
# The reports benchmark seeds 1M cases and 10M timeline entries (minutes):
# it runs only when asked, as here.
export RECOURSE_BENCH_PG=1

. scripts/postgres.sh
COUNT=${COUNT:-3}

if ! pg_up; then
  echo "bench: PostgreSQL is not reachable at $RECOURSE_TEST_DATABASE_URL; start it or set RECOURSE_TEST_DATABASE_URL." >&2
  exit 1
fi
# The benchmark must fail, not skip, if its probe disagrees with ours.
export CI=true

raw=${BENCH_OUT:-$(mktemp)}
[ -n "${BENCH_OUT:-}" ] || trap 'rm -f "$raw"' EXIT
: >"$raw"

{
  echo "bench: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc 2>/dev/null || echo '?') CPUs, $(go version | cut -d' ' -f3-)"
  if command -v psql >/dev/null 2>&1; then
    psql -X -At -d "$RECOURSE_TEST_DATABASE_URL" \
      -c "SELECT 'bench: ' || split_part(version(), ' on ', 1) || ', fsync=' || current_setting('fsync') || ', synchronous_commit=' || current_setting('synchronous_commit')" 2>/dev/null || true
  fi
} | tee -a "$raw" >&2

# Each benchmark measures once per invocation (its sub-benchmarks report what
# the parent measured), so repeats are separate invocations, not -count.
status=0
for run in $(seq 1 "$COUNT"); do
  for entry in "${BENCHMARKS[@]}"; do
    read -r pkg pattern benchtime <<<"$entry"
    benchtime=${benchtime:-1x}
    if [ -n "${BENCH:-}" ] && ! grep -qE -- "${BENCH}" <<<"$pattern"; then
      continue
    fi
    echo "bench: run $run/$COUNT: go test -run '^\$' -bench '$pattern' -benchtime $benchtime -count 1 $* $pkg" >&2
    if ! go test -run '^$' -bench "$pattern" -benchtime "$benchtime" -count 1 -timeout 30m "$@" "$pkg" | tee -a "$raw"; then
      status=1
    fi
  done
done

# The issue-11 peer comparison prints its own tables.
if [ -z "${BENCH:-}" ] || grep -qE -- "${BENCH}" <<<"Peer"; then
  peer_flags=${PEER_FLAGS:--c 8,32 -rounds 2 -events 2000 -profile-c 0 -e2e 1m}
  echo "bench: go run ./bench/intake -pg $RECOURSE_TEST_DATABASE_URL $peer_flags" >&2
  # shellcheck disable=SC2086 # the flags are words
  if ! go run ./bench/intake -pg "$RECOURSE_TEST_DATABASE_URL" $peer_flags; then
    status=1
  fi
fi

# The table: one row per (sub-)benchmark, the median of each figure over its
# runs. Known units come first in a fixed order; any others follow.
awk '
function median(key,    n, i, j, t, a) {
  n = split(vals[key], a, " ")
  for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
  return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function fmt(unit, v) {
  if (unit == "events/s" || unit == "B/event" || unit ~ /cpu-us/) return sprintf("%.0f", v)
  if (unit == "x-floor") return sprintf("%.2f", v)
  if (unit == "batch") return sprintf("%.1f", v)
  return sprintf("%.2f", v)
}
/^Benchmark/ {
  name = $1; sub(/^Benchmark/, "", name); sub(/-[0-9]+$/, "", name)
  if (!(name in runs)) order[++nnames] = name
  runs[name]++
  for (i = 3; i < NF; i += 2) {
    unit = $(i + 1)
    if (unit == "ns/op" || unit == "B/op" || unit == "allocs/op") continue
    if (!(unit in seen)) { seen[unit] = 1; extra[++nextra] = unit }
    vals[name SUBSEP unit] = vals[name SUBSEP unit] " " $i
  }
}
/ledger balanced/ { balanced++ }
/ledger does not balance/ { unbalanced++ }
END {
  if (nnames == 0) { print "bench: no benchmark results"; exit }
  split("events/s p50-ms p99-ms x-floor batch B/event", pref, " ")
  for (i = 1; i <= 6; i++) if (pref[i] in seen) { cols[++ncols] = pref[i]; used[pref[i]] = 1 }
  for (i = 1; i <= nextra; i++) if (!(extra[i] in used)) cols[++ncols] = extra[i]
  w = 8; for (k = 1; k <= nnames; k++) if (length(order[k]) > w) w = length(order[k])
  printf "\n%-" w "s %5s", "benchmark", "runs"
  for (c = 1; c <= ncols; c++) { cw[c] = length(cols[c]) > 9 ? length(cols[c]) : 9; printf " %" cw[c] "s", cols[c] }
  printf "\n"
  for (k = 1; k <= nnames; k++) {
    name = order[k]
    printf "%-" w "s %5d", name, runs[name]
    for (c = 1; c <= ncols; c++) {
      key = name SUBSEP cols[c]
      printf " %" cw[c] "s", (key in vals) ? fmt(cols[c], median(key)) : "-"
    }
    printf "\n"
  }
  printf "(medians over runs; x-floor = intake events/s / floor events/s of the same run, median of the per-run ratios)\n"
  if (balanced + unbalanced > 0) printf "ledger: %d checks balanced, %d did not\n", balanced, unbalanced
}' "$raw"

[ -z "${BENCH_OUT:-}" ] || echo "bench: raw output in $raw" >&2
exit "$status"
