#!/usr/bin/env bash
# Monthly partitions for webhook_events on PostgreSQL: what retention costs
# with row deletes on the plain table, and with whole months dropped on a
# partitioned one (docs/benchmarks.md, "Retention at 10M webhook events").
#
#   N=10000000 MONTHS=12 ./scripts/partition_bench.sh
#
# It builds both tables in a scratch schema of $DATABASE_URL (default: the
# local test database), N rows spread evenly over MONTHS months, each with
# a ~500-byte payload and the inbox's indexes, then removes the oldest month
# from each and prints the times and sizes. The schema is dropped at the end.
# PARTED_ONLY=1 builds and measures the partitioned table alone.
#
# REAL=1 measures the real schema and code instead, in a database of its
# own (DB, default recourse_partbench, created and dropped): migrations up
# to 0028, N events loaded into the plain inbox, then `recourse migrate up`
# (0029: the copy into monthly partitions), then `recourse retention run`
# with an event age that drops the oldest month (and row-deletes the hours
# of the next month before the cutoff), then again with the cutoff 15 days
# further on (row deletes only), printing times and sizes.
set -euo pipefail
N=${N:-10000000}
MONTHS=${MONTHS:-12}
URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
if [ -n "${REAL:-}" ]; then
  cd "$(dirname "$0")/.."
  DB=${DB:-recourse_partbench}
  BASE=${URL%%\?*}; BASE=${BASE%/*}
  RURL="$BASE/$DB?sslmode=disable"
  q() { command psql "$RURL" -v ON_ERROR_STOP=1 -X -q "$@"; }
  now() { date +%s.%N; }
  since() { echo "$(now) - $1" | bc; }
  size() { q -tAc "SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_class c WHERE c.relkind = 'r' AND (c.relname = 'webhook_events' OR c.relname LIKE 'webhook\_events\_%')"; }
  command psql "$URL" -X -q -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
  trap 'command psql "$URL" -X -q -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true' EXIT
  go build -o /tmp/recourse-partbench ./cmd/recourse
  q -c "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMP NOT NULL)"
  for f in migrations/postgres/*.sql; do
    v=$(basename "$f" .sql); n=$((10#${v%%_*}))
    [ "$n" -ge 29 ] && break
    q -1 -f "$f" -c "INSERT INTO schema_migrations VALUES ($n, '$v', now())"
  done
  start=$(q -tAc "SELECT date_trunc('month', now() - interval '$((MONTHS-1)) months')")
  # The inbox as 0001 and 0027 left it; its indexes dropped for the load and
  # made again after it (the same table, sooner).
  t0=$(now)
  q <<SQL
ALTER TABLE webhook_events DROP CONSTRAINT webhook_events_event_id_key;
DROP INDEX webhook_events_due_idx, webhook_events_pending_age_idx, webhook_events_status_idx, webhook_events_type_idx,
           webhook_events_object_idx, webhook_events_payload_kept_idx;
INSERT INTO webhook_events (event_id, type, created, object_type, object_id, payload, status, attempts, next_attempt_at, received_at, processed_at)
SELECT 'evt_' || md5(g::text), (ARRAY['invoice.paid','invoice.payment_failed','customer.subscription.updated','charge.succeeded'])[1 + g % 4],
       c, 'invoice', 'in_' || (g % 2000000),
       convert_to(repeat(md5(g::text), 15), 'UTF8'),
       CASE WHEN g % 1000 = 0 THEN 'dead' WHEN g % 100003 = 0 THEN 'pending' ELSE 'processed' END, 1, c, c, c
FROM (SELECT g, '$start'::timestamptz + (g::float8 / $N) * (now() - '$start'::timestamptz) AS c FROM generate_series(1, $N) g) s;
ALTER TABLE webhook_events ADD CONSTRAINT webhook_events_event_id_key UNIQUE (event_id);
CREATE INDEX webhook_events_due_idx ON webhook_events (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_events_pending_age_idx ON webhook_events (received_at) WHERE status = 'pending';
CREATE INDEX webhook_events_status_idx ON webhook_events (status, id);
CREATE INDEX webhook_events_type_idx ON webhook_events (type, id);
CREATE INDEX webhook_events_object_idx ON webhook_events (object_id);
CREATE INDEX webhook_events_payload_kept_idx ON webhook_events (created) WHERE status IN ('processed', 'ignored') AND length(payload) > 0;
VACUUM ANALYZE webhook_events;
SQL
  echo "load $N events into the plain inbox (schema 0028): $(since $t0) s"
  echo "rows $(q -tAc "SELECT count(*) FROM webhook_events"), size (heap, TOAST, indexes) $(size)"
  export DATABASE_URL="$RURL"
  t0=$(now)
  /tmp/recourse-partbench migrate up
  echo "recourse migrate up (0029: copy into monthly partitions, keys and indexes): $(since $t0) s"
  q -c "VACUUM ANALYZE webhook_events"
  echo "size after the migration $(size); partitions: $(q -tAc "SELECT count(*) FROM pg_inherits WHERE inhparent = 'webhook_events'::regclass")"
  m0=$(q -tAc "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'webhook_events'::regclass AND c.relname <> 'webhook_events_default' ORDER BY 1 LIMIT 1")
  echo "oldest month $m0: $(q -tAc "SELECT count(*) || ' rows, ' || count(*) FILTER (WHERE status NOT IN ('processed','ignored')) || ' pending or dead, ' || pg_size_pretty(pg_total_relation_size('$m0')) FROM $m0")"
  # The event age whose cutoff falls on the first day after the oldest month.
  days=$(q -tAc "SELECT floor(extract(epoch FROM now() - ('$start'::timestamptz + interval '1 month')) / 86400)::int")
  for d in $days $((days - 15)); do
    t0=$(now)
    /tmp/recourse-partbench retention run --events-days "$d" --json | tr -d '\n '; echo
    echo "recourse retention run --events-days $d: $(since $t0) s; size after $(size); rows $(q -tAc "SELECT count(*) FROM webhook_events"), in DEFAULT $(q -tAc "SELECT count(*) FROM webhook_events_default")"
  done
  t0=$(now); q -c "VACUUM webhook_events"; echo "VACUUM after the row deletes: $(since $t0) s; size $(size)"
  exit 0
fi
S=partbench_$$
psql() { command psql "$URL" -v ON_ERROR_STOP=1 -X -q "$@"; }
trap 'psql -c "DROP SCHEMA IF EXISTS $S CASCADE" >/dev/null 2>&1 || true' EXIT

psql <<SQL
CREATE SCHEMA $S;
SET search_path = $S;
-- The plain table: migrations/postgres/0001_init.sql as it is.
CREATE TABLE plain (
    id              BIGSERIAL PRIMARY KEY,
    event_id        TEXT        NOT NULL,
    provider        TEXT        NOT NULL DEFAULT 'stripe',
    type            TEXT        NOT NULL,
    created         TIMESTAMPTZ NOT NULL,
    livemode        BOOLEAN     NOT NULL DEFAULT FALSE,
    account         TEXT,
    api_version     TEXT,
    object_type     TEXT,
    object_id       TEXT,
    payload         BYTEA       NOT NULL,
    status          TEXT        NOT NULL DEFAULT 'pending',
    attempts        INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    last_error      TEXT,
    lease_owner     TEXT,
    lease_until     TIMESTAMPTZ,
    received_at     TIMESTAMPTZ NOT NULL,
    processed_at    TIMESTAMPTZ,
    CONSTRAINT plain_event_id_key UNIQUE (event_id)
);
-- The partitioned table: the same columns, by month of the event's
-- created time. A unique key must include the partition key: (event_id,
-- created) is as good as event_id alone, because an event's created time is
-- part of the signed event — every redelivery and every listing of it
-- carries the same one.
CREATE TABLE parted (LIKE plain INCLUDING DEFAULTS, PRIMARY KEY (id, created), UNIQUE (event_id, created))
    PARTITION BY RANGE (created);
SQL
start=$(psql -tAc "SELECT date_trunc('month', now() - interval '$((MONTHS-1)) months')")
for ((m=0; m<MONTHS; m++)); do
  psql -c "SET search_path=$S; CREATE TABLE parted_m$m PARTITION OF parted FOR VALUES FROM ('$start'::timestamptz + interval '$m months') TO ('$start'::timestamptz + interval '$((m+1)) months')"
done
psql -c "SET search_path=$S; CREATE TABLE parted_default PARTITION OF parted DEFAULT"

fill() { # table
  local t0=$(date +%s.%N)
  psql <<SQL
SET search_path = $S;
INSERT INTO $1 (event_id, type, created, object_type, object_id, payload, status, next_attempt_at, received_at, processed_at)
SELECT 'evt_' || md5(g::text), (ARRAY['invoice.paid','invoice.payment_failed','customer.subscription.updated','charge.succeeded'])[1 + g % 4],
       c, 'invoice', 'in_' || (g % 2000000),
       convert_to(repeat(md5(g::text), 15), 'UTF8'),
       CASE WHEN g % 1000 = 0 THEN 'dead' ELSE 'processed' END, c, c, c
FROM (SELECT g, '$start'::timestamptz + (g::float8 / $N) * (now() - '$start'::timestamptz) AS c FROM generate_series(1, $N) g) s;
CREATE INDEX ON $1 (next_attempt_at) WHERE status = 'pending';
CREATE INDEX ON $1 (received_at) WHERE status = 'pending';
CREATE INDEX ON $1 (status, id);
CREATE INDEX ON $1 (type, id);
CREATE INDEX ON $1 (object_id);
VACUUM ANALYZE $1;
SQL
  echo "fill $1: $(echo "$(date +%s.%N) - $t0" | bc) s"
}
size() { psql -tAc "SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '$S' AND c.relkind IN ('r','p') AND (c.relname = '$1' OR c.relname LIKE '$1\\_%')"; }
rows() { psql -tAc "SELECT count(*) FROM $S.$1"; }

[ -z "${PARTED_ONLY:-}" ] && fill plain
fill parted
echo "rows: plain $(rows plain), parted $(rows parted)"
echo "month 0 rows: $(psql -tAc "SELECT count(*) FROM $S.parted_m0") (of which not applied: $(psql -tAc "SELECT count(*) FROM $S.parted_m0 WHERE status NOT IN ('processed','ignored')"))"
echo "size before: plain $(size plain), parted $(size parted)"

cut=$(psql -tAc "SELECT '$start'::timestamptz + interval '1 month'")
total=$(psql -tAc "SELECT count(*) FROM $S.parted_m0 WHERE status IN ('processed','ignored')")
if [ -z "${PARTED_ONLY:-}" ]; then
# Plain: retention deletes the month's applied rows, 1,000 a transaction as
# webhooks.Retention does; the file keeps its size until VACUUM FULL.
t0=$(date +%s.%N)
psql <<SQL
SET search_path = $S;
DO \$\$
DECLARE n bigint;
BEGIN
  LOOP
    DELETE FROM plain WHERE id IN (SELECT id FROM plain WHERE status IN ('processed','ignored') AND created < '$cut' ORDER BY id LIMIT 1000);
    GET DIAGNOSTICS n = ROW_COUNT;
    COMMIT;
    EXIT WHEN n = 0;
  END LOOP;
END
\$\$;
SQL
echo "plain: batched DELETE of $total rows: $(echo "$(date +%s.%N) - $t0" | bc) s"
t0=$(date +%s.%N)
psql -c "VACUUM $S.plain"
echo "plain: VACUUM after the delete: $(echo "$(date +%s.%N) - $t0" | bc) s"
echo "plain size after DELETE + VACUUM: $(size plain)"
fi

# Partitioned: the month's rows that are not applied (dead letters) move
# out first — here to a table of their own — then the partition is
# detached and dropped. Each step timed on its own.
echo "month 0 partition: $(size parted_m0)"
step() { # label sql
  local t0=$(date +%s.%N)
  psql -c "SET search_path = $S; $2"
  echo "parted: $1: $(echo "$(date +%s.%N) - $t0" | bc) s"
}
step "copy the month's dead letters out" "CREATE TABLE kept_dead AS SELECT * FROM parted_m0 WHERE status NOT IN ('processed','ignored')"
step "DETACH PARTITION" "ALTER TABLE parted DETACH PARTITION parted_m0"
step "DROP TABLE" "DROP TABLE parted_m0"
echo "parted size after the drop: $(size parted)"
echo "size of the other tables' months is unchanged; the month's dead letters ($(psql -tAc "SELECT count(*) FROM $S.kept_dead")) were kept"
echo "rows after: plain $(rows plain), parted $(rows parted)"
