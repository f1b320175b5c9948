package cases

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/recourse-hq/recourse/internal/errs"
)

// legal is the specification of every kind's lifecycle: each line is
// "from --event--> to". Every (state, event) pair not listed must be refused.
var legal = map[Kind][]string{
	KindDispute: {
		"warning_needs_response --submit_inquiry_response--> warning_under_review",
		"warning_needs_response --escalate_to_chargeback--> needs_response",
		"warning_under_review --escalate_to_chargeback--> needs_response",
		"warning_needs_response --close_inquiry--> warning_closed",
		"warning_under_review --close_inquiry--> warning_closed",
		"needs_response --start_evidence--> preparing_evidence",
		"needs_response --submit_evidence--> under_review",
		"preparing_evidence --submit_evidence--> under_review",
		"needs_response --win--> won",
		"preparing_evidence --win--> won",
		"under_review --win--> won",
		"needs_response --lose--> lost",
		"preparing_evidence --lose--> lost",
		"under_review --lose--> lost",
		"warning_needs_response --prevent--> prevented",
		"warning_needs_response --charge_refunded--> charge_refunded",
		"warning_under_review --prevent--> prevented",
		"warning_under_review --charge_refunded--> charge_refunded",
		"needs_response --prevent--> prevented",
		"needs_response --charge_refunded--> charge_refunded",
		"preparing_evidence --prevent--> prevented",
		"preparing_evidence --charge_refunded--> charge_refunded",
		"under_review --prevent--> prevented",
		"under_review --charge_refunded--> charge_refunded",
		"needs_response --accept--> accepted",
		"preparing_evidence --accept--> accepted",
		"accepted --lose--> lost",
	},
	KindFraudWarning: {
		"needs_review --refund--> refunded",
		"needs_review --dispute_opened--> disputed",
		"needs_review --dismiss--> dismissed",
	},
	KindPaymentFailure: {
		"failing --contact_customer--> awaiting_customer",
		"failing --recover--> recovered",
		"awaiting_customer --recover--> recovered",
		"churned --recover--> recovered",
		"written_off --recover--> recovered",
		"dismissed --recover--> recovered",
		"failing --churn--> churned",
		"awaiting_customer --churn--> churned",
		"written_off --churn--> churned",
		"failing --write_off--> written_off",
		"awaiting_customer --write_off--> written_off",
		"failing --dismiss--> dismissed",
		"awaiting_customer --dismiss--> dismissed",
		"churned --reopen--> failing",
		"written_off --reopen--> failing",
		"dismissed --reopen--> failing",
	},
	KindTrialConversion: {
		"trial_ending --contact_customer--> awaiting_customer",
		"trial_ending --convert--> converted",
		"awaiting_customer --convert--> converted",
		"lost --convert--> converted",
		"dismissed --convert--> converted",
		"trial_ending --lose--> lost",
		"awaiting_customer --lose--> lost",
		"trial_ending --dismiss--> dismissed",
		"awaiting_customer --dismiss--> dismissed",
		"dismissed --reopen--> trial_ending",
	},
	KindCancellation: {
		"requested --offer_retention--> retention_offered",
		"requested --retain--> retained",
		"retention_offered --retain--> retained",
		"requested --cancel--> canceled",
		"retention_offered --cancel--> canceled",
		"retained --reopen--> requested",
	},
	KindRefundFailure: {
		"failed --investigate--> investigating",
		"failed --resolve--> resolved",
		"investigating --resolve--> resolved",
	},
	KindRefundRequest: {
		"new --start--> in_progress",
		"new --await_customer--> waiting_on_customer",
		"in_progress --await_customer--> waiting_on_customer",
		"waiting_on_customer --customer_replied--> in_progress",
		"new --refund--> refunded",
		"in_progress --refund--> refunded",
		"waiting_on_customer --refund--> refunded",
		"new --decline--> declined",
		"in_progress --decline--> declined",
		"waiting_on_customer --decline--> declined",
		"refunded --reopen--> in_progress",
		"declined --reopen--> in_progress",
	},
	KindBillingInquiry: {
		"new --start--> in_progress",
		"new --await_customer--> waiting_on_customer",
		"in_progress --await_customer--> waiting_on_customer",
		"waiting_on_customer --customer_replied--> in_progress",
		"new --resolve--> resolved",
		"in_progress --resolve--> resolved",
		"waiting_on_customer --resolve--> resolved",
		"resolved --reopen--> in_progress",
	},
}

type transition struct{ from, event, to string }

func parseLegal(t *testing.T, lines []string) map[[2]string]string {
	t.Helper()
	out := map[[2]string]string{}
	for _, l := range lines {
		var tr transition
		from, rest, ok1 := strings.Cut(l, " --")
		ev, to, ok2 := strings.Cut(rest, "--> ")
		if !ok1 || !ok2 {
			t.Fatalf("bad spec line %q", l)
		}
		tr = transition{from, ev, to}
		out[[2]string{tr.from, tr.event}] = tr.to
	}
	return out
}

func TestLifecycles(t *testing.T) {
	t.Parallel()
	if len(lifecycles) != len(Kinds()) {
		t.Fatalf("%d lifecycles for %d kinds", len(lifecycles), len(Kinds()))
	}
	for _, lc := range Lifecycles() {
		t.Run(string(lc.Kind), func(t *testing.T) {
			t.Parallel()
			spec := parseLegal(t, legal[lc.Kind])
			ctx := context.Background()
			events := map[string]bool{}
			for _, e := range lc.Events {
				events[e.Name] = true
			}
			for _, state := range lc.States() {
				for ev := range events {
					want, ok := spec[[2]string{state, ev}]
					got, err := lc.Fire(ctx, state, ev, false)
					if ok {
						if err != nil || got != want {
							t.Errorf("%s --%s--> got %q, %v; want %s", state, ev, got, err, want)
						}
						continue
					}
					if err == nil {
						t.Errorf("%s --%s--> %s is legal but not in the spec", state, ev, got)
						continue
					}
					e, isCoded := errs.As(err)
					if !isCoded || e.Kind != errs.ECONFLICT || e.Code != "illegal_transition" {
						t.Errorf("%s --%s-->: want ECONFLICT illegal_transition, got %v", state, ev, err)
						continue
					}
					allowed, _ := e.Details["allowed_transitions"].([]string)
					if e.Details["state"] != state || !slices.Equal(allowed, lc.Available(state, false)) {
						t.Errorf("%s --%s-->: details %v", state, ev, e.Details)
					}
				}
			}
			// Unknown events are refused the same way.
			if _, err := lc.Fire(ctx, lc.Initial, "no_such_event", false); !errs.Is(err, errs.ECONFLICT) {
				t.Errorf("unknown event: got %v", err)
			}
			// Manual-only firing refuses the provider's events.
			for _, e := range lc.Events {
				if lc.IsManual(e.Name) {
					continue
				}
				if _, err := lc.Fire(ctx, e.Src[0], e.Name, true); !errs.Is(err, errs.ECONFLICT) {
					t.Errorf("manual fire of system event %s from %s: got %v", e.Name, e.Src[0], err)
				}
			}
		})
	}
}

// TestLifecycleShape checks every lifecycle is well formed: manual events
// exist, every state is reachable from the start, every open state can reach
// a closed one, closed states name a resolution.
func TestLifecycleShape(t *testing.T) {
	t.Parallel()
	for _, lc := range lifecycles {
		for _, m := range lc.Manual {
			if !lc.HasEvent(m) {
				t.Errorf("%s: manual event %s is not an event", lc.Kind, m)
			}
		}
		if lc.IsClosed(lc.Initial) {
			t.Errorf("%s: initial state is closed", lc.Kind)
		}
		for st, res := range lc.Closed {
			if !lc.HasState(st) || res == "" {
				t.Errorf("%s: closed state %s (resolution %q)", lc.Kind, st, res)
			}
		}
		starts := []string{lc.Initial}
		if lc.InquiryInitial != "" {
			starts = append(starts, lc.InquiryInitial)
		}
		for _, st := range lc.States() {
			reachable := slices.Contains(starts, st)
			for _, s0 := range starts {
				reachable = reachable || lc.pathTo(s0, st) != nil
			}
			if !reachable {
				t.Errorf("%s: state %s unreachable", lc.Kind, st)
			}
			if lc.IsClosed(st) {
				continue
			}
			closes := false
			for cs := range lc.Closed {
				closes = closes || lc.pathTo(st, cs) != nil
			}
			if !closes {
				t.Errorf("%s: open state %s can never close", lc.Kind, st)
			}
		}
		if lc.Team == "" || lc.DefaultPriority.Rank() == 0 {
			t.Errorf("%s: team %q priority %q", lc.Kind, lc.Team, lc.DefaultPriority)
		}
	}
}

func TestPathNeverReopens(t *testing.T) {
	t.Parallel()
	pf := mustLifecycle(KindPaymentFailure)
	// churned → written_off would need reopen → failing → write_off: refused.
	if p := pf.pathTo("churned", "written_off"); p != nil {
		t.Fatalf("path churned → written_off = %v, want none", p)
	}
	if p := pf.pathTo("churned", "recovered"); !slices.Equal(p, []string{"recover"}) {
		t.Fatalf("path churned → recovered = %v", p)
	}
	d := mustLifecycle(KindDispute)
	if p := d.pathTo("warning_needs_response", "lost"); !slices.Equal(p, []string{"escalate_to_chargeback", "lose"}) {
		t.Fatalf("inquiry → lost = %v", p)
	}
	if p := d.pathTo("lost", "needs_response"); p != nil {
		t.Fatalf("lost → needs_response = %v, want none", p)
	}
	if ev, ok := mustLifecycle(KindCancellation).reopenEvent("retained"); !ok || ev != "reopen" {
		t.Fatalf("cancellation reopen from retained: %q %v", ev, ok)
	}
	if _, ok := d.reopenEvent("lost"); ok {
		t.Fatal("disputes must not reopen")
	}
}

func TestAvailableManual(t *testing.T) {
	t.Parallel()
	d := mustLifecycle(KindDispute)
	got := d.Available("needs_response", true)
	want := []string{"start_evidence", "submit_evidence"}
	if !slices.Equal(got, want) {
		t.Fatalf("manual transitions from needs_response = %v, want %v", got, want)
	}
	if got := d.Available("lost", true); len(got) != 0 {
		t.Fatalf("closed dispute allows %v", got)
	}
}
