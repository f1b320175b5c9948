package actions_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/recourse-hq/recourse/billing"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
)

// declines answers every refund with a final provider error.
type declines struct{ billing.Provider }

func (declines) Refund(context.Context, billing.RefundRequest) (billing.Result, error) {
	return billing.Result{}, &billing.ProviderError{Type: "invalid_request_error", Code: "charge_already_refunded",
		Message: "Charge has already been refunded.", Err: errors.New("refunded")}
}

// An action waiting for approval announces approval.requested, and one the
// provider refuses announces action.failed, each once, from the transaction
// that records it; an action that runs at once asks no approval.
func TestActionsAnnounceApprovalAndFailure(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		_, p := withFakeStripe(t)
		h := newHarness(t, d, declines{p})
		c := h.seed("c1", "refund_request", 90000)
		waiting := h.act(c.ID, "agent", "big", "refund", map[string]any{"amount": 20000}, "annual plan refund")
		if waiting.status != 202 {
			t.Fatalf("pending: %d %v", waiting.status, waiting.body)
		}
		failed := h.act(c.ID, "agent", "small", "refund", map[string]any{"amount": 10000}, "at the agent's limit")
		act, _ := failed.body["error"].(map[string]any)["details"].(map[string]any)["action"].(map[string]any)
		if failed.status != 422 || act["status"] != "failed" {
			t.Fatalf("declined refund: %d %v", failed.status, failed.body)
		}
		h.cases.mu.Lock()
		got := slices.Clone(h.cases.announced)
		h.cases.mu.Unlock()
		want := []string{"approval.requested approval-requested/" + waiting.body["id"].(string), "action.failed action-failed/" + act["id"].(string)}
		if !slices.Equal(got, want) {
			t.Fatalf("announced %v, want %v", got, want)
		}
	})
}
