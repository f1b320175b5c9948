package webhooks

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
)

// TestFinishAllInMarksTheBatchOrNothing: a batch's marks are one statement
// per status; each event gets its own status, and when another worker has
// taken over any one event the batch learns it (errLeaseLost) and, rolled
// back, marks nothing.
func TestFinishAllInMarksTheBatchOrNothing(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		in := NewInbox(d)
		now := time.Now().UTC().Truncate(time.Second)
		var evs []Event
		for i := 0; i < 4; i++ {
			ev, err := parseEnvelope([]byte(fmt.Sprintf(`{"id":"evt_fin%d","object":"event","type":"invoice.paid","created":%d,"data":{"object":{"id":"in_%d","object":"invoice"}}}`,
				i, now.Add(-time.Duration(i)*40*24*time.Hour).Unix(), i))) // in different months
			if err != nil {
				t.Fatal(err)
			}
			evs = append(evs, ev)
		}
		if _, err := in.InsertBatch(ctx, evs, now); err != nil {
			t.Fatal(err)
		}
		status := func(id string) Status {
			rec, err := in.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return rec.Status
		}
		finish := func(claimed []Event, statuses []Status) error {
			return d.Transact(ctx, func(tx *gorm.DB) error {
				return finishAllIn(ctx, tx, claimed, statuses, "A", now, d.Dialect.Partitioned())
			})
		}
		claimed, err := in.Claim(ctx, "A", 10, now, time.Minute)
		if err != nil || len(claimed) != 4 {
			t.Fatalf("claim: %d %v", len(claimed), err)
		}
		// The lease runs out and B takes the first event over.
		if stolen, err := in.Claim(ctx, "B", 1, now.Add(2*time.Minute), time.Minute); err != nil || len(stolen) != 1 {
			t.Fatalf("take over: %d %v", len(stolen), err)
		}
		sts := []Status{StatusProcessed, StatusIgnored, StatusProcessed, StatusIgnored}
		if err := finish(claimed, sts); !errors.Is(err, errLeaseLost) {
			t.Fatalf("finish with one event taken over = %v, want errLeaseLost", err)
		}
		for _, ev := range claimed {
			if s := status(ev.ID); s != StatusPending {
				t.Fatalf("%s is %s after the batch rolled back", ev.ID, s)
			}
		}
		// Claimed again by A, all held: every event its own status.
		claimed, err = in.Claim(ctx, "A", 10, now.Add(10*time.Minute), time.Minute)
		if err != nil || len(claimed) != 4 {
			t.Fatalf("claim again: %d %v", len(claimed), err)
		}
		sts = make([]Status, len(claimed))
		for i, ev := range claimed {
			sts[i] = StatusProcessed
			if ev.ID == "evt_fin1" || ev.ID == "evt_fin3" {
				sts[i] = StatusIgnored
			}
		}
		if err := finish(claimed, sts); err != nil {
			t.Fatal(err)
		}
		for i, ev := range claimed {
			if s := status(ev.ID); s != sts[i] {
				t.Fatalf("%s is %s, want %s", ev.ID, s, sts[i])
			}
		}
	})
}

// TestClaimWalksTheDueIndex: on PostgreSQL the claim reads the due index in
// order and stops at the batch, whatever the statistics say — no sort, no
// bitmap or sequential scan of the backlog. Without Dialect.IndexOrder the
// planner, trusting estimates, reads every pending row.
func TestClaimWalksTheDueIndex(t *testing.T) {
	d := dbtest.Open(t, db.Postgres)
	ctx := context.Background()
	in := NewInbox(d)
	now := time.Now().UTC().Truncate(time.Second)
	var evs []Event
	for i := 0; i < 200; i++ {
		ev, err := parseEnvelope([]byte(fmt.Sprintf(`{"id":"evt_due%d","object":"event","type":"invoice.paid","created":%d,"data":{"object":{"id":"in_%d","object":"invoice","customer":"cus_%d"}}}`,
			i, now.Unix(), i, i%7)))
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	if _, err := in.InsertBatch(ctx, evs, now); err != nil {
		t.Fatal(err)
	}
	q, args := in.claimSQL("w", 16, now, time.Minute, 1, 4)
	var plan []string
	err := d.Transact(ctx, func(tx *gorm.DB) error {
		if err := d.Dialect.IndexOrder(ctx, tx); err != nil {
			return err
		}
		return tx.Raw("EXPLAIN "+q, args...).Scan(&plan).Error
	})
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(plan, "\n")
	if !strings.Contains(text, "Index Scan using webhook_events_") || !strings.Contains(text, "next_attempt_at_id_idx") ||
		strings.Contains(text, "Sort  (") || strings.Contains(text, "Bitmap") || strings.Contains(text, "Seq Scan") {
		t.Fatalf("the claim does not walk the due index:\n%s", text)
	}
}
