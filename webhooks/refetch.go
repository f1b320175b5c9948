package webhooks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/recourse-hq/recourse/billing"
)

// Listing events closes the gaps Stripe still remembers; it cannot see a
// state that moved without an event we received (an event older than
// Stripe's 30 days, a change Stripe made without one). So the reconciler
// also reads, at Stripe, the objects behind open cases whose mirror has
// not heard from Stripe for a while, and applies each as a provider read:
// the newer-wins rule of events, with the read's time as its created time
// (billing.Store.ApplyRead). A read that changes the mirror reaches the
// cases as an event would, in the same transaction.

// DefaultStaleAfter is how long a mirrored object behind an open case may
// go without news from the provider before reconciliation reads it again.
const DefaultStaleAfter = 24 * time.Hour

// maxReportedObjects bounds the changed and failed objects a report names.
const maxReportedObjects = 50

// RefetchCases is what refetching needs of cases (cases.Service): which
// objects open cases are about, the change handler, and how many cases a
// change reached.
type RefetchCases interface {
	CaseHandler
	OpenCaseObjects(ctx context.Context) ([]billing.ObjectRef, error)
	CasesOfEvent(ctx context.Context, tx *gorm.DB, eventID string) (int, error)
}

// RefetchOptions turn refetching on.
type RefetchOptions struct {
	Reader billing.ObjectReader
	Store  *billing.Store
	Cases  RefetchCases
	// StaleAfter: an object is read again when the mirror last synced it
	// (the created time of the event, or the time of the read, that wrote
	// its state) more than this long ago. 0 means DefaultStaleAfter.
	StaleAfter time.Duration
}

// RefetchReport says what refetching found. Stale = Checked + Failed;
// Changed ≤ Checked; Fixed ≤ Changed.
type RefetchReport struct {
	StaleAfter string `json:"stale_after"`
	// Cutoff: objects last synced before it were stale.
	Cutoff time.Time `json:"cutoff"`
	// Objects: the objects open cases are about.
	Objects int `json:"objects"`
	Stale   int `json:"stale"`
	// Checked: stale objects read at Stripe and applied as reads.
	Checked int `json:"checked"`
	// Changed: reads whose state differed from the mirror's and was newer:
	// the mirror took it (the object moved without an event we applied).
	Changed int `json:"changed"`
	// Fixed: changed objects whose change reached at least one case.
	Fixed int `json:"fixed"`
	// Superseded: reads older than an event applied meanwhile: nothing changed.
	Superseded int `json:"superseded"`
	// Failed: stale objects that could not be read or applied.
	Failed int `json:"failed"`
	// ChangedObjects and FailedObjects name the first 50 of each.
	ChangedObjects []ObjectOutcome `json:"changed_objects,omitempty"`
	FailedObjects  []ObjectOutcome `json:"failed_objects,omitempty"`
}

// ObjectOutcome is what refetching did with one object.
type ObjectOutcome struct {
	billing.ObjectRef
	Before string `json:"before,omitempty"`
	After  string `json:"after,omitempty"`
	Cases  int    `json:"cases,omitempty"` // the cases the change reached
	Error  string `json:"error,omitempty"`
}

type refetcher struct {
	RefetchOptions
	objects *prometheus.CounterVec
}

// WithRefetch makes every run also refetch the stale objects behind open
// cases (see RefetchOptions); reg, if not nil, gets its metrics.
func (r *Reconciler) WithRefetch(o RefetchOptions, reg prometheus.Registerer) *Reconciler {
	if o.StaleAfter <= 0 {
		o.StaleAfter = DefaultStaleAfter
	}
	rf := &refetcher{RefetchOptions: o, objects: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "recourse_reconcile_stale_objects_total",
		Help: "Stale mirrored objects behind open cases that reconciliation read at the provider, by outcome (checked, changed, fixed, superseded, failed).",
	}, []string{"outcome"})}
	for _, o := range []string{"checked", "changed", "fixed", "superseded", "failed"} {
		rf.objects.WithLabelValues(o)
	}
	if reg != nil {
		reg.MustRegister(rf.objects)
	}
	r.refetch = rf
	r.metrics.StaleObjects = rf.objects
	return r
}

// refetchStale reads and applies every stale object behind an open case.
// One object's failure is counted and named, and the rest are still done;
// the returned error is for what stops the whole step (the open cases or
// the mirror cannot be read).
func (r *Reconciler) refetchStale(ctx context.Context, now time.Time) (*RefetchReport, error) {
	rf := r.refetch
	rep := &RefetchReport{StaleAfter: rf.StaleAfter.String(), Cutoff: now.Add(-rf.StaleAfter).UTC()}
	refs, err := rf.Cases.OpenCaseObjects(ctx)
	if err != nil {
		return rep, err
	}
	rep.Objects = len(refs)
	stale, err := rf.Store.SyncedBefore(ctx, refs, rep.Cutoff)
	if err != nil {
		return rep, err
	}
	rep.Stale = len(stale)
	for _, obj := range stale {
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
		out, err := r.refetchOne(ctx, obj.Ref)
		switch {
		case err != nil:
			rep.Failed++
			out.Error = err.Error()
			if len(rep.FailedObjects) < maxReportedObjects {
				rep.FailedObjects = append(rep.FailedObjects, out.ObjectOutcome)
			}
			r.log.Warn("reconcile: could not refetch a stale object", "object", obj.Ref.String(), "err", err)
		case out.superseded:
			rep.Checked++
			rep.Superseded++
		case out.changed:
			rep.Checked++
			rep.Changed++
			if out.Cases > 0 {
				rep.Fixed++
			}
			if len(rep.ChangedObjects) < maxReportedObjects {
				rep.ChangedObjects = append(rep.ChangedObjects, out.ObjectOutcome)
			}
		default:
			rep.Checked++
		}
	}
	for outcome, n := range map[string]int{"checked": rep.Checked, "changed": rep.Changed, "fixed": rep.Fixed,
		"superseded": rep.Superseded, "failed": rep.Failed} {
		rf.objects.WithLabelValues(outcome).Add(float64(n))
	}
	if rep.Changed > 0 || rep.Failed > 0 {
		r.log.Warn("reconcile: refetched stale objects", "stale", rep.Stale, "changed", rep.Changed, "fixed", rep.Fixed, "failed", rep.Failed)
	}
	return rep, nil
}

type refetchOutcome struct {
	ObjectOutcome
	changed, superseded bool
}

// refetchOne reads one object at the provider and applies the read, with
// the cases it moves, in one transaction.
func (r *Reconciler) refetchOne(ctx context.Context, ref billing.ObjectRef) (refetchOutcome, error) {
	rf := r.refetch
	out := refetchOutcome{ObjectOutcome: ObjectOutcome{ObjectRef: ref}}
	// The read counts from when it was asked for: whatever Stripe answers
	// is at least that recent.
	at := r.clock.Now().UTC()
	payload, err := rf.Reader.ReadObject(ctx, ref)
	if err != nil {
		return out, fmt.Errorf("read %s at the provider: %w", ref, err)
	}
	err = r.db.Transact(ctx, func(tx *gorm.DB) error {
		out = refetchOutcome{ObjectOutcome: ObjectOutcome{ObjectRef: ref}}
		st := rf.Store.In(tx)
		res, err := st.ApplyRead(ctx, billing.ProviderRead{Ref: ref, At: at, Payload: payload})
		if err != nil {
			return err
		}
		out.Before, out.After, out.changed, out.superseded = res.Before, res.After, res.Changed, res.Superseded
		if !res.Changed {
			return nil
		}
		// An erased customer's objects keep no personal data, as for events.
		if erased, err := st.IsErased(ctx, res.Change.CustomerID); err != nil {
			return err
		} else if erased {
			if err := st.DropPersonalData(ctx, res.Change.CustomerID); err != nil {
				return err
			}
		}
		if err := rf.Cases.OnBillingChange(ctx, tx, res.Change); err != nil {
			return fmt.Errorf("update cases for the read of %s: %w", ref, err)
		}
		out.Cases, err = rf.Cases.CasesOfEvent(ctx, tx, res.Change.EventID)
		return err
	})
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return out, err
		}
		return out, fmt.Errorf("apply the read of %s: %w", ref, err)
	}
	return out, nil
}
