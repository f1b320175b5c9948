package webhooks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/webhooks"
)

// objectEvent is a signed-ready event carrying obj as data.object.
func objectEvent(t *testing.T, typ string, obj map[string]any) (string, []byte) {
	t.Helper()
	id := newEventID()
	b, err := json.Marshal(map[string]any{
		"id": id, "object": "event", "api_version": "2023-10-16", "created": time.Now().Unix(),
		"data": map[string]any{"object": obj}, "livemode": false, "type": typ,
	})
	if err != nil {
		t.Fatal(err)
	}
	return id, b
}

func storedShard(t *testing.T, d *db.DB, eventID string) int64 {
	t.Helper()
	var s []int64
	if err := d.Gorm.Raw("SELECT shard FROM webhook_events WHERE event_id = ?", eventID).Scan(&s).Error; err != nil || len(s) != 1 {
		t.Fatalf("shard of %s: %v %v", eventID, s, err)
	}
	return s[0]
}

// TestShardFollowsTheCustomer: the intake keys every event by the customer
// it belongs to — named or expanded —, else by its charge, else by its own
// object, so one customer's events land in one worker loop.
func TestShardFollowsTheCustomer(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, harnessOpts{})
		cases := []struct {
			name, typ, key string
			obj            map[string]any
		}{
			{"the customer itself", "customer.updated", "cus_S1", map[string]any{"id": "cus_S1", "object": "customer"}},
			{"a customer id", "invoice.paid", "cus_S1", map[string]any{"id": "in_S1", "object": "invoice", "customer": "cus_S1", "charge": "ch_S1"}},
			{"an expanded customer", "charge.succeeded", "cus_S1", map[string]any{"id": "ch_S1", "object": "charge", "customer": map[string]any{"id": "cus_S1", "object": "customer"}}},
			{"no customer: the charge", "charge.dispute.created", "ch_S1", map[string]any{"id": "dp_S1", "object": "dispute", "charge": "ch_S1"}},
			{"a null customer: the expanded charge", "refund.created", "ch_S1", map[string]any{"id": "re_S1", "object": "refund", "customer": nil, "charge": map[string]any{"id": "ch_S1"}}},
			{"neither: the object", "radar.early_fraud_warning.created", "issfr_S1", map[string]any{"id": "issfr_S1", "object": "radar.early_fraud_warning", "charge": 42}},
		}
		for _, c := range cases {
			id, payload := objectEvent(t, c.typ, c.obj)
			if r := h.deliverSigned(payload); r.Status != 200 {
				t.Fatalf("%s: %d %s", c.name, r.Status, r.Body)
			}
			if got, want := storedShard(t, d, id), webhooks.ShardOf(c.key); got != want {
				t.Errorf("%s: shard %d, want %d (the hash of %s)", c.name, got, want, c.key)
			}
		}
		if webhooks.ShardOf("cus_S1") == webhooks.ShardOf("cus_S2") || webhooks.ShardOf("x") < 0 {
			t.Fatal("ShardOf does not tell keys apart or is negative")
		}
	})
}

// customersPerShard returns, for each shard of `of`, a customer id whose
// events fall in it.
func customersPerShard(of int) []string {
	out := make([]string, of)
	for i, found := 0, 0; found < of; i++ {
		c := fmt.Sprintf("cus_shard%d", i)
		if k := webhooks.ShardOf(c) % int64(of); out[k] == "" {
			out[k] = c
			found++
		}
	}
	return out
}

// TestClaimShardTakesOnlyItsShard: each loop claims exactly the events of
// its shard, the loops together claim every event once, and an unsharded
// claim (of = 1) takes any.
func TestClaimShardTakesOnlyItsShard(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, harnessOpts{})
		const of = 3
		custs := customersPerShard(of)
		shardOf := map[string]int{}
		for round := 0; round < 4; round++ {
			for k, c := range custs {
				id, payload := objectEvent(t, "invoice.paid", map[string]any{"id": fmt.Sprintf("in_%d_%d", round, k), "object": "invoice", "customer": c})
				if r := h.deliverSigned(payload); r.Status != 200 {
					t.Fatalf("deliver: %d %s", r.Status, r.Body)
				}
				shardOf[id] = k
			}
		}
		ctx, now := context.Background(), h.clock.Now()
		seen := map[string]bool{}
		for k := 0; k < of; k++ {
			evs, err := h.inbox.ClaimShard(ctx, "loop", 100, now, time.Minute, k, of)
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != 4 {
				t.Fatalf("shard %d claimed %d events, want 4", k, len(evs))
			}
			for _, ev := range evs {
				if shardOf[ev.ID] != k || seen[ev.ID] {
					t.Fatalf("shard %d claimed %s (of shard %d, seen before: %v)", k, ev.ID, shardOf[ev.ID], seen[ev.ID])
				}
				seen[ev.ID] = true
			}
		}
		if len(seen) != len(shardOf) {
			t.Fatalf("claimed %d of %d events", len(seen), len(shardOf))
		}
		// Leases run out: one unsharded claim takes them all again.
		evs, err := h.inbox.ClaimShard(ctx, "any", 100, now.Add(2*time.Minute), time.Minute, 0, 1)
		if err != nil || len(evs) != len(shardOf) {
			t.Fatalf("unsharded claim: %d events, %v; want %d", len(evs), err, len(shardOf))
		}
	})
}

// TestNotifyWakesEveryLoop: each loop applies only its shard, so a
// notification must wake all of them — with an hour between polls, events of
// every shard are applied at once after Notify.
func TestNotifyWakesEveryLoop(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		createEffects(t, d)
		const loops = 3
		h := newHarness(t, d, harnessOpts{concurrency: loops, poll: time.Hour, handlers: withEffects})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { h.worker.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
		time.Sleep(300 * time.Millisecond) // every loop has looked once and sleeps
		var ids []string
		for i, c := range customersPerShard(loops) {
			id, payload := objectEvent(t, "invoice.paid", map[string]any{"id": fmt.Sprintf("in_w%d", i), "object": "invoice", "customer": c})
			if r := h.deliverSigned(payload); r.Status != 200 {
				t.Fatalf("deliver: %d %s", r.Status, r.Body)
			}
			ids = append(ids, id)
		}
		h.worker.Notify()
		deadline := time.Now().Add(10 * time.Second)
		for _, id := range ids {
			for countEffects(t, d, id) != 1 {
				if time.Now().After(deadline) {
					t.Fatalf("event %s (shard %d of %d) not applied after Notify", id, storedShard(t, d, id)%loops, loops)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	})
}

// TestIntakeWakesTheLoopOfEachShard: with an hour between polls, each event
// the intake stores wakes the loop of its shard, and only that loop needs
// to look.
func TestIntakeWakesTheLoopOfEachShard(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		createEffects(t, d)
		const loops = 4
		h := newHarness(t, d, harnessOpts{concurrency: loops, poll: time.Hour, notify: true, handlers: withEffects})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { h.worker.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
		time.Sleep(300 * time.Millisecond) // every loop has looked once and sleeps
		for i, c := range customersPerShard(loops) {
			id, payload := objectEvent(t, "invoice.paid", map[string]any{"id": fmt.Sprintf("in_n%d", i), "object": "invoice", "customer": c})
			if r := h.deliverSigned(payload); r.Status != 200 {
				t.Fatalf("deliver: %d %s", r.Status, r.Body)
			}
			deadline := time.Now().Add(10 * time.Second)
			for countEffects(t, d, id) != 1 {
				if time.Now().After(deadline) {
					t.Fatalf("event %s of shard %d not applied after the intake stored it", id, i)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	})
}
