package faults

import (
	"context"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/internal/db"
)

// The sabotage is in the test's data, never in the product: after a run has
// drained, it damages what the run left the way a lost or a doubled event
// would look, so that the ledger can be seen to fail.
//
//   - drop: one acknowledged, applied event disappears from the inbox with
//     its billing timeline entry (acknowledged and lost);
//   - double: one applied event's billing and case timeline entries are
//     written a second time (the unique keys that forbid that are dropped
//     first: this is what applying it twice would have left without them).
//
// RECOURSE_FAULTS_SABOTAGE=drop|double applies it to every fault run, and
// `make faults` then fails.
func sabotage(t *testing.T, d *gorm.DB, mode string) string {
	t.Helper()
	g := d.WithContext(context.Background())
	var victim string
	offset := 7
	if mode == "double" {
		offset = 11
	}
	if err := g.Raw(`SELECT w.event_id FROM webhook_events w
		WHERE w.status = 'processed' AND EXISTS (SELECT 1 FROM case_timeline c WHERE c.event_id = w.event_id)
		ORDER BY w.event_id LIMIT 1 OFFSET ?`, offset).Scan(&victim).Error; err != nil || victim == "" {
		t.Fatalf("sabotage: no applied event with case effects to damage (%v)", err)
	}
	var stmts []string
	switch mode {
	case "drop":
		stmts = []string{
			"DELETE FROM webhook_events WHERE event_id = @id",
			"DELETE FROM billing_timeline WHERE event_id = @id",
		}
	case "double":
		stmts = []string{
			"ALTER TABLE billing_timeline DROP CONSTRAINT IF EXISTS billing_timeline_event_id_key",
			"DROP INDEX IF EXISTS case_timeline_event_idx",
			`INSERT INTO billing_timeline (customer_id, at, event_id, event_type, object, object_id, charge_id, summary, severity, created_at)
			 SELECT customer_id, at, event_id, event_type, object, object_id, charge_id, summary, severity, created_at
			 FROM billing_timeline WHERE event_id = @id`,
			`INSERT INTO case_timeline (case_id, at, actor, actor_type, type, summary, event_id, occurred_at, from_state, to_state, transition, body)
			 SELECT case_id, at, actor, actor_type, type, summary, event_id, occurred_at, from_state, to_state, transition, body
			 FROM case_timeline WHERE event_id = @id`,
		}
	default:
		t.Fatalf("RECOURSE_FAULTS_SABOTAGE=%q: want drop or double", mode)
	}
	for _, q := range stmts {
		var args []any
		if strings.Contains(q, "@id") {
			args = append(args, map[string]any{"id": victim})
		}
		if err := g.Exec(q, args...).Error; err != nil {
			t.Fatalf("sabotage %s: %s: %v", mode, q, err)
		}
	}
	t.Logf("sabotage %s: event %s", mode, victim)
	return victim
}

// sabotageReference shows that the ledger fails: it damages the fault-free
// run's data (after its ledger was recorded) each way in a transaction it
// rolls back, and requires each damage to be reported as an imbalance in
// the right column.
func sabotageReference(t *testing.T, d *db.DB, in ledgerInput) {
	t.Helper()
	ctx := context.Background()
	for _, mode := range []string{"drop", "double"} {
		tx := d.Gorm.WithContext(ctx).Begin()
		if tx.Error != nil {
			t.Fatal(tx.Error)
		}
		victim := sabotage(t, tx, mode)
		s, err := readSnapshot(ctx, tx)
		tx.Rollback()
		if err != nil {
			t.Fatal(err)
		}
		in := in
		in.fault = "sabotaged reference: " + mode
		r := balance(in, s)
		r.Expected = true
		ledgerMu.Lock()
		ledgerRows = append(ledgerRows, r)
		ledgerMu.Unlock()
		switch {
		case r.balanced():
			t.Errorf("the ledger balances after the %s sabotage of %s; it must not", mode, victim)
		case mode == "drop" && r.Lost == 0:
			t.Errorf("drop sabotage of %s not counted as lost: %s", victim, r.line())
		case mode == "double" && r.Duplicated == 0:
			t.Errorf("double sabotage of %s not counted as duplicated: %s", victim, r.line())
		default:
			t.Logf("sabotage %s caught: %s\n  %v", mode, r.line(), r.Problems)
		}
	}
}

// The provider half of the ledger fails on a double execution, on an
// action that says it failed though the provider acted, and on a POST
// without an idempotency key. It needs no processes, so it runs in
// `make test` too.
func TestProviderLedgerCatchesDoubles(t *testing.T) {
	actions := []actionFact{
		{ID: "act_1", ClientKey: "k1", ProviderKey: "recourse_act_1", Status: "succeeded"},
		{ID: "act_2", ClientKey: "k2", ProviderKey: "recourse_act_2", Status: "failed"},
	}
	good := []providerCall{
		{method: "POST", path: "/v1/refunds", key: "recourse_act_1", executed: true},                // answer lost
		{method: "POST", path: "/v1/refunds", key: "recourse_act_1", executed: true, answered: 200}, // same key: one effect at Stripe
		{method: "POST", path: "/v1/refunds", key: "recourse_act_2", answered: 500},
	}
	if r := balanceProvider(2, actions, good); !r.balanced() {
		t.Fatalf("a lost answer retried with its key must balance: %v", r.Problems)
	}
	for name, tc := range map[string]struct {
		actions []actionFact
		calls   []providerCall
	}{
		"one request, two actions": {
			append(actions, actionFact{ID: "act_3", ClientKey: "k1", ProviderKey: "recourse_act_3", Status: "succeeded"}),
			append(good, providerCall{method: "POST", path: "/v1/refunds", key: "recourse_act_3", executed: true, answered: 200}),
		},
		"failed but executed": {actions, append(good, providerCall{method: "POST", path: "/v1/refunds", key: "recourse_act_2", executed: true})},
		"no idempotency key":  {actions, append(good, providerCall{method: "POST", path: "/v1/refunds", executed: true, answered: 200})},
		"a key nobody owns":   {actions, append(good, providerCall{method: "POST", path: "/v1/refunds", key: "stray", executed: true, answered: 200})},
		"succeeded, never executed": {
			append(actions[:1:1], actionFact{ID: "act_4", ClientKey: "k4", ProviderKey: "recourse_act_4", Status: "succeeded"}, actions[1]),
			good,
		},
	} {
		reqs := len(tc.actions)
		if name == "one request, two actions" {
			reqs = 2
		}
		if r := balanceProvider(reqs, tc.actions, tc.calls); r.balanced() {
			t.Errorf("%s: the provider ledger balances; it must not", name)
		}
	}
}
