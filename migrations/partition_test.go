package migrations_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/migrations"
)

// TestWebhookEventsPartitionMigration: migration 0029 turns an inbox that
// already holds events into one partitioned by month without losing or
// changing a row; a redelivery of a stored event is still refused; every
// lookup the inbox makes by event id is served by an index; the ids go on
// from where they were; and an event for a month without a partition lands
// in DEFAULT, from which making its month moves it.
func TestWebhookEventsPartitionMigration(t *testing.T) {
	t.Parallel()
	dbtest.RequirePostgres(t)
	ctx := context.Background()
	d, err := db.Open(ctx, dbtest.NewPostgresURL(t), "", db.Options{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	g := d.Gorm
	all, err := migrations.All(db.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := migrations.List(ctx, d); err != nil { // creates schema_migrations
		t.Fatal(err)
	}
	for _, m := range all {
		if m.Version >= 29 {
			break
		}
		if err := g.Exec(m.SQL).Error; err != nil {
			t.Fatalf("apply %s: %v", m.Name, err)
		}
		if err := g.Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)", m.Version, m.Name, time.Now()).Error; err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UTC()
	month := func(t time.Time) string { return "webhook_events_p" + t.UTC().Format("2006_01") }
	thisMonth := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	rows := []struct {
		id, status string
		created    time.Time
		part       string
	}{
		{"evt_2019", "processed", time.Date(2019, 3, 15, 8, 0, 0, 0, time.UTC), "webhook_events_p2019_03"},
		{"evt_may_last", "processed", time.Date(2026, 5, 31, 23, 59, 59, 0, time.UTC), "webhook_events_p2026_05"},
		{"evt_may_first", "dead", time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC), "webhook_events_p2026_05"},
		{"evt_jun_first", "pending", time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), "webhook_events_p2026_06"},
		{"evt_now", "ignored", now.Truncate(time.Second), month(now)},
	}
	for i, r := range rows {
		if err := g.Exec(`INSERT INTO webhook_events (event_id, type, created, object_type, object_id, payload, status, attempts, next_attempt_at, last_error, received_at, processed_at)
VALUES (?, 'invoice.paid', ?, 'invoice', ?, ?, ?, ?, ?, ?, ?, ?)`, r.id, r.created, "in_"+r.id, []byte(`{"id":"`+r.id+`"}`), r.status, i,
			r.created.Add(time.Minute), "error "+r.id, r.created.Add(time.Second), r.created.Add(time.Hour)).Error; err != nil {
			t.Fatal(err)
		}
	}
	// Every column of every row, in order: the same after the migration
	// (the columns 0029 knew; later migrations add their own).
	const digest = `SELECT count(*) || ':' || md5(string_agg(ROW(id, event_id, provider, type, created, livemode, account, api_version,
object_type, object_id, payload, status, attempts, next_attempt_at, last_error, lease_owner, lease_until, received_at, processed_at)::text,
'|' ORDER BY id)) FROM webhook_events w`
	var before, after string
	var maxID int64
	g.Raw(digest).Scan(&before)
	g.Raw(`SELECT max(id) FROM webhook_events`).Scan(&maxID)

	applied, err := migrations.Up(ctx, d, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(applied, 29) {
		t.Fatalf("applied %v, want 29 among them", applied)
	}
	g.Raw(digest).Scan(&after)
	if before != after || !strings.HasPrefix(after, fmt.Sprint(len(rows))+":") {
		t.Fatalf("rows changed by the migration: before %s, after %s", before, after)
	}
	var kind string
	g.Raw(`SELECT relkind::text FROM pg_class WHERE oid = 'webhook_events'::regclass`).Scan(&kind)
	if kind != "p" {
		t.Fatalf("webhook_events relkind %q, want p (partitioned)", kind)
	}

	// Each row in its month; the months of the rows, this one and the next
	// two made; DEFAULT empty.
	partOf := func(eventID string) string {
		var p string
		if err := g.Raw(`SELECT tableoid::regclass::text FROM webhook_events WHERE event_id = ?`, eventID).Scan(&p).Error; err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, r := range rows {
		if got := partOf(r.id); got != r.part {
			t.Errorf("%s (created %s) is in %s, want %s", r.id, r.created, got, r.part)
		}
	}
	var parts []string
	g.Raw(`SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'webhook_events'::regclass ORDER BY 1`).Scan(&parts)
	want := []string{"webhook_events_default", "webhook_events_p2019_03", "webhook_events_p2026_05", "webhook_events_p2026_06",
		month(thisMonth), month(thisMonth.AddDate(0, 1, 0)), month(thisMonth.AddDate(0, 2, 0))}
	slices.Sort(want)
	want = slices.Compact(want)
	if !slices.Equal(parts, want) {
		t.Errorf("partitions %v, want %v", parts, want)
	}

	// The intake's insert: a redelivery of a stored event is refused, on
	// the month edge too; a new event is stored, with the next id.
	insert := func(eventID string, created time.Time) []string {
		var got []string
		if err := g.Raw(`INSERT INTO webhook_events (event_id, type, created, payload, next_attempt_at, received_at)
VALUES (?, 'invoice.paid', ?, '\x7b7d', ?, ?) ON CONFLICT DO NOTHING RETURNING event_id`, eventID, created, now, now).Scan(&got).Error; err != nil {
			t.Fatal(err)
		}
		return got
	}
	for _, r := range rows {
		if got := insert(r.id, r.created); len(got) != 0 {
			t.Errorf("redelivery of %s was stored again: %v", r.id, got)
		}
	}
	if got := insert("evt_new", now); len(got) != 1 {
		t.Fatalf("new event not stored: %v", got)
	}
	var newID int64
	g.Raw(`SELECT id FROM webhook_events WHERE event_id = 'evt_new'`).Scan(&newID)
	if newID <= maxID {
		t.Errorf("new event got id %d, not after the copied rows' %d", newID, maxID)
	}
	var n int64
	g.Raw(`SELECT count(*) FROM webhook_events WHERE event_id IN ?`, []string{"evt_2019", "evt_may_last", "evt_may_first", "evt_jun_first", "evt_now"}).Scan(&n)
	if n != int64(len(rows)) {
		t.Errorf("%d rows for the stored events after their redeliveries, want %d", n, len(rows))
	}

	// Lookups by event id (Get, the worker's finish and fail, Release,
	// Replay, the erasure's payload update) go through an index in every
	// partition: with sequential scans priced out, none is planned.
	for _, q := range []string{
		`SELECT * FROM webhook_events WHERE event_id = 'evt_x'`,
		`UPDATE webhook_events SET status = 'processed' WHERE event_id = 'evt_x' AND lease_owner = 'w' AND status = 'pending'`,
		`UPDATE webhook_events SET lease_owner = NULL WHERE lease_owner = 'w' AND status = 'pending' AND event_id IN ('evt_x', 'evt_y')`,
		`UPDATE webhook_events SET status = 'pending' WHERE event_id = 'evt_x' AND status = 'dead'`,
		`UPDATE webhook_events SET payload = '' WHERE event_id = 'evt_x'`,
	} {
		var plan []string
		err := g.Transaction(func(tx *gorm.DB) error {
			if err := tx.Exec(`SET LOCAL enable_seqscan = off`).Error; err != nil {
				return err
			}
			return tx.Raw("EXPLAIN " + q).Scan(&plan).Error
		})
		if err != nil {
			t.Fatal(err)
		}
		if p := strings.Join(plan, "\n"); strings.Contains(p, "Seq Scan") || !strings.Contains(p, "event_id") {
			t.Errorf("%s\nis not served by an index on event_id:\n%s", q, p)
		}
	}

	// An event for a month without a partition lands in DEFAULT; making
	// the month moves it there, once.
	far := time.Date(now.Year()+2, 8, 15, 0, 0, 0, 0, time.UTC)
	if got := insert("evt_far", far); len(got) != 1 {
		t.Fatalf("event for a month without a partition refused: %v", got)
	}
	if got := partOf("evt_far"); got != "webhook_events_default" {
		t.Fatalf("evt_far in %s, want the DEFAULT partition", got)
	}
	for i, wantMade := range []bool{true, false} {
		var made bool
		if err := g.Raw(`SELECT webhook_events_add_month(?)`, far).Scan(&made).Error; err != nil {
			t.Fatal(err)
		}
		if made != wantMade {
			t.Errorf("call %d: made %v, want %v", i+1, made, wantMade)
		}
	}
	if got := partOf("evt_far"); got != month(far) {
		t.Errorf("evt_far in %s after its month was made, want %s", got, month(far))
	}
	if got := insert("evt_far", far); len(got) != 0 {
		t.Errorf("redelivery of the moved event stored again")
	}
	g.Raw(`SELECT count(*) FROM webhook_events_default`).Scan(&n)
	if n != 0 {
		t.Errorf("%d rows left in DEFAULT", n)
	}
}
