package cases

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/billing"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/stripetest"
)

// The billing mirror satisfies BillingReader once bound to a transaction.
var _ BillingReader = (*billing.Store)(nil)

// storyOutcomes is what each built-in stripetest story leaves behind, as
// sorted "kind:state" of the cases on its customer.
var storyOutcomes = map[string][]string{
	stripetest.StoryActiveRenews:          {},
	stripetest.StoryTrialConverts:         {},
	stripetest.StoryTrialLapsesCanceled:   {"trial_conversion:lost"},
	stripetest.StoryTrialLapsesPaused:     {"trial_conversion:lost"},
	stripetest.StoryRenewalRecovers:       {"payment_failure:recovered"},
	stripetest.StoryRenewalChurnsUnpaid:   {"payment_failure:churned"},
	stripetest.StoryRenewalChurnsCanceled: {"payment_failure:churned"},
	stripetest.StoryCancelRetained:        {"cancellation:retained"},
	stripetest.StoryCancelChurns:          {"cancellation:canceled"},
	stripetest.StoryRefundIssued:          {},
	stripetest.StoryRefundFailed:          {"refund_failure:failed"},
	stripetest.StoryFraudWarningRefunded:  {"fraud_warning:refunded"},
	stripetest.StoryFraudWarningDisputed:  {"dispute:lost", "fraud_warning:disputed"},
	stripetest.StoryInquiryClosed:         {"dispute:warning_closed"},
	stripetest.StoryChargebackWon:         {"dispute:won"},
	stripetest.StoryChargebackLost:        {"dispute:lost"},
}

// TestStoriesThroughTheMirror runs every built-in story through the real
// billing mirror and OnBillingChange, as the webhook worker does (one
// transaction per event), in order, in reverse, shuffled, and with every
// event delivered twice, and checks each ordering leaves the same cases.
func TestStoriesThroughTheMirror(t *testing.T) {
	t.Parallel()
	orders := map[string]func([]stripetest.Event) []stripetest.Event{
		"in_order": func(evs []stripetest.Event) []stripetest.Event { return evs },
		"reversed": func(evs []stripetest.Event) []stripetest.Event {
			out := slices.Clone(evs)
			slices.Reverse(out)
			return out
		},
		"shuffled": func(evs []stripetest.Event) []stripetest.Event {
			out := slices.Clone(evs)
			rand.New(rand.NewPCG(7, 11)).Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
			return out
		},
		"twice": func(evs []stripetest.Event) []stripetest.Event {
			var out []stripetest.Event
			for i, e := range evs {
				out = append(out, e)
				if i > 0 {
					out = append(out, evs[i-1])
				}
			}
			return append(out, evs[len(evs)-1])
		},
	}
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		for name, order := range orders {
			t.Run(name, func(t *testing.T) {
				d := dbtest.Open(t, d.Dialect)
				f := newFixture(t, d)
				store := billing.NewStore(d, f.clock)
				f.svc.billing = func(tx *gorm.DB) BillingReader { return store.In(tx) }
				g := stripetest.New(42, stripetest.WithClock(f.clock.Now))
				ctx := context.Background()
				for _, sc := range stripetest.Scenarios() {
					evs := sc.Run(g, t0)
					ids := map[string]bool{}
					for _, ev := range order(evs) {
						err := d.Transact(ctx, func(tx *gorm.DB) error {
							ch, err := store.In(tx).Apply(ctx, billing.ProviderEvent{ID: ev.ID, Type: ev.Type, Created: ev.Created,
								APIVersion: "2023-10-16", Payload: ev.Payload})
							if errors.Is(err, billing.ErrNotBillingEvent) {
								return nil
							}
							if err != nil {
								return err
							}
							for _, id := range []string{ch.CustomerID, ch.ObjectID} {
								if id != "" {
									ids[id] = true
								}
							}
							return f.svc.OnBillingChange(ctx, tx, ch)
						})
						if err != nil {
							t.Fatalf("%s: %s %s: %v", sc.Name, ev.Type, ev.ID, err)
						}
					}
					// The story's cases: those linked to any of its objects.
					var got []string
					seen := map[string]bool{}
					for id := range ids {
						var rows []caseRow
						if err := d.Gorm.Where("customer_id = ? OR subscription_id = ? OR invoice_id = ? OR charge_id = ? OR dispute_id = ? OR refund_id = ? OR fraud_warning_id = ?",
							id, id, id, id, id, id, id).Find(&rows).Error; err != nil {
							t.Fatal(err)
						}
						for _, r := range rows {
							if seen[r.ID] {
								continue
							}
							seen[r.ID] = true
							got = append(got, r.Kind+":"+r.State)
							if r.CustomerID == nil {
								t.Errorf("%s (%s): %s case %s has no customer link", sc.Name, name, r.Kind, r.ID)
							}
							checkProviderTimeline(t, f.timeline(r.ID))
						}
					}
					sort.Strings(got)
					want, ok := storyOutcomes[sc.Name]
					if !ok {
						t.Fatalf("story %s has no expected outcome", sc.Name)
					}
					if strings.Join(got, ",") != strings.Join(want, ",") {
						t.Errorf("%s (%s): cases %v, want %v\n%s", sc.Name, name, got, want, describe(evs))
					}
				}
			})
		}
	})
}

func describe(evs []stripetest.Event) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "  %s %s\n", e.Created.Format("01-02 15:04"), e.Type)
	}
	return b.String()
}
