package billing

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"time"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/internal/errs"
)

// A provider read is the provider's copy of one object, taken at a known
// time: what reconciliation fetches for an object whose mirror has not
// heard from the provider for a while (an event lost for good, or a state
// the provider changed without an event we received). It obeys the rule
// events obey, with the read's time as its event created time: a read
// taken at T is newer than every event created before T, an event created
// after T wins over it, and a read no newer than the stored state changes
// nothing.

// ObjectRef names one provider object.
type ObjectRef struct {
	Kind ObjectKind `json:"kind"`
	ID   string     `json:"id"`
}

func (r ObjectRef) String() string { return string(r.Kind) + " " + r.ID }

// ReadableKinds are the kinds a provider read may carry, in the order
// reconciliation reads them.
var ReadableKinds = []ObjectKind{KindCustomer, KindSubscription, KindInvoice, KindCharge, KindDispute}

// ObjectReader reads objects from the provider.
type ObjectReader interface {
	// ReadObject returns the provider's current copy of the object as
	// JSON, the shape an event's data.object carries. ENOTFOUND when the
	// provider has no such object; a provider error otherwise.
	ReadObject(ctx context.Context, ref ObjectRef) (json.RawMessage, error)
}

// ProviderRead is an object as the provider returned it at At.
type ProviderRead struct {
	Ref ObjectRef
	// At is when the read was asked for. It is kept to the second, as
	// event created times are: an event of that same second may be older
	// or newer, and the object's own progress decides, as between two
	// events of one second.
	At      time.Time
	Payload json.RawMessage // the object's JSON
}

// ReadEventType is the event type a read's Change, billing timeline fact
// and case timeline entries carry.
const ReadEventType = "reconcile.read"

// ReadID is the version id a read takes: one per object and second, so the
// same read applied twice is a redelivery and changes nothing.
func ReadID(ref ObjectRef, at time.Time) string {
	return fmt.Sprintf("read_%d_%s", at.Unix(), ref.ID)
}

// ReadResult is what applying a read did.
type ReadResult struct {
	// Change is the object's state in the mirror afterwards, like Apply's
	// (EventID is the read's ReadID, EventType ReadEventType). Previous
	// holds the status (and a subscription's cancel_at_period_end) the
	// read moved the object from, as an event's previous_attributes would.
	Change Change
	// Changed is true when the read moved the mirror's state: the
	// provider's copy differed and was newer. The fact is then on the
	// customer's billing timeline, once.
	Changed bool
	// Superseded is true when the mirror already held a state newer than
	// the read (an event created after it): nothing changed.
	Superseded bool
	// Before is the summary of the state the read replaced ("" when none).
	Before, After string
}

// ApplyRead applies one provider read to the mirror inside the transaction
// the store is bound to (an unbound store opens its own). A read that is
// newer than the stored state replaces it — its version becomes the read's,
// so the object counts as synced at the read's time even when nothing else
// differed; an equal or older read changes nothing. Only a read that changed
// the state leaves a billing timeline fact.
// Errors: EINVALID for a kind that cannot be read or a payload that is not
// that object; storage errors otherwise.
func (s *Store) ApplyRead(ctx context.Context, r ProviderRead) (ReadResult, error) {
	if s.tx == nil {
		var res ReadResult
		err := s.db.Transact(ctx, func(tx *gorm.DB) error {
			var err error
			res, err = s.In(tx).ApplyRead(ctx, r)
			return err
		})
		return res, err
	}
	kind := r.Ref.Kind
	if !readable(kind) {
		return ReadResult{}, errs.Invalid("a %s cannot be read from the provider", kind)
	}
	obj, err := decodeObject(r.Payload)
	if err != nil {
		return ReadResult{}, invalidPayload("read of %s: not a JSON object: %v", r.Ref, err)
	}
	if got := obj.str("object"); got != objectNames[kind] {
		return ReadResult{}, invalidPayload("read of %s returned a %q", r.Ref, got)
	}
	if got := obj.str("id"); got != r.Ref.ID {
		return ReadResult{}, invalidPayload("read of %s returned %s %q", r.Ref, kind, got)
	}
	at := r.At.UTC().Truncate(time.Second)
	env := envelope{ID: ReadID(r.Ref, at), Type: ReadEventType, Created: at, Object: obj}

	before := Change{Object: kind, ObjectID: r.Ref.ID}
	found := true
	if err := s.loadCurrent(ctx, env, &before); errs.Is(err, errs.ENOTFOUND) {
		found = false
	} else if err != nil {
		return ReadResult{}, err
	}
	ch := Change{EventID: env.ID, EventType: ReadEventType, EventCreated: at, Object: kind, ObjectID: r.Ref.ID}
	var rec timelineRecord
	switch kind {
	case KindCustomer:
		rec, err = s.applyCustomer(ctx, env, &ch)
	case KindSubscription:
		rec, err = s.applySubscription(ctx, env, &ch)
		sent := parseSubscription(env.Object, env)
		ch.EventSubscription = &sent
	case KindInvoice:
		rec, err = s.applyInvoice(ctx, env, &ch)
	case KindCharge:
		rec, err = s.applyCharge(ctx, env, &ch)
	case KindDispute:
		rec, err = s.applyDispute(ctx, env, &ch)
	}
	if err != nil {
		return ReadResult{}, fmt.Errorf("apply the read of %s: %w", r.Ref, err)
	}
	// The apply functions say Stale for an older read; an equal one (the
	// same read again) is neither newer nor stale.
	after := Change{Object: kind, ObjectID: r.Ref.ID}
	if err := s.loadCurrent(ctx, env, &after); err != nil {
		return ReadResult{}, err
	}
	res := ReadResult{Superseded: ch.Stale}
	if found {
		res.Before = stateWords(before)
	}
	res.After = stateWords(after)
	res.Changed = !found || !sameState(before, after)
	if res.Changed {
		ch.Previous = previousOf(before, after, found)
		ch.Summary, rec.severity = readSummary(r.Ref, res, found), SeverityWarning
		rec.summary = ch.Summary
		if err := s.recordTimeline(ctx, env, &ch, rec); err != nil {
			return ReadResult{}, err
		}
		// The same read, applied by another replica between our first
		// look and the row lock: it changed the state, not we.
		res.Changed = !ch.Duplicate
	}
	res.Change = ch
	return res, nil
}

func readable(k ObjectKind) bool {
	for _, r := range ReadableKinds {
		if r == k {
			return true
		}
	}
	return false
}

// objectOf returns the object pointer a Change carries.
func objectOf(ch Change) any {
	switch ch.Object {
	case KindCustomer:
		return ch.Customer
	case KindSubscription:
		return ch.Subscription
	case KindInvoice:
		return ch.Invoice
	case KindCharge:
		return ch.Charge
	case KindDispute:
		return ch.Dispute
	}
	return nil
}

// sameState compares two states of one object, their versions aside.
func sameState(a, b Change) bool {
	va, vb := reflect.ValueOf(objectOf(a)), reflect.ValueOf(objectOf(b))
	if va.IsNil() || vb.IsNil() {
		return va.IsNil() == vb.IsNil()
	}
	ca, cb := reflect.New(va.Elem().Type()).Elem(), reflect.New(vb.Elem().Type()).Elem()
	ca.Set(va.Elem())
	cb.Set(vb.Elem())
	ca.FieldByName("Version").Set(reflect.ValueOf(Version{}))
	cb.FieldByName("Version").Set(reflect.ValueOf(Version{}))
	return reflect.DeepEqual(ca.Interface(), cb.Interface())
}

// statusOf is the object's status ("deleted"/"active" for customers).
func statusOf(ch Change) string {
	switch ch.Object {
	case KindCustomer:
		if ch.Customer != nil && ch.Customer.Deleted {
			return "deleted"
		}
		return ""
	case KindSubscription:
		return ch.Subscription.Status
	case KindInvoice:
		return ch.Invoice.Status
	case KindCharge:
		return ch.Charge.Status
	case KindDispute:
		return ch.Dispute.Status
	}
	return ""
}

// previousOf is what an updated event's previous_attributes would have
// said about the move from before to after.
func previousOf(before, after Change, found bool) Previous {
	var p Previous
	if !found {
		return p
	}
	if b, a := statusOf(before), statusOf(after); b != a {
		p.Status = b
	}
	if before.Subscription != nil && after.Subscription != nil && before.Subscription.CancelAtPeriodEnd != after.Subscription.CancelAtPeriodEnd {
		was := before.Subscription.CancelAtPeriodEnd
		p.CancelAtPeriodEnd = &was
	}
	return p
}

// stateWords says the state in a few words: its status and the fields that
// differ most often without an event.
func stateWords(ch Change) string {
	switch ch.Object {
	case KindCustomer:
		if c := ch.Customer; c != nil && c.Deleted {
			return "deleted"
		}
		return "active"
	case KindSubscription:
		s := ch.Subscription.Status
		if ch.Subscription.CancelAtPeriodEnd {
			s += ", cancels at period end"
		}
		return s
	case KindInvoice:
		return fmt.Sprintf("%s, %d attempt(s)", ch.Invoice.Status, ch.Invoice.AttemptCount)
	case KindCharge:
		return fmt.Sprintf("%s, %s refunded", ch.Charge.Status, FormatMoney(ch.Charge.AmountRefunded, ch.Charge.Currency))
	case KindDispute:
		return ch.Dispute.Status
	}
	return ""
}

func readSummary(ref ObjectRef, res ReadResult, found bool) string {
	if !found {
		return fmt.Sprintf("Reconciliation read %s from Stripe: %s (not mirrored before)", ref, res.After)
	}
	if res.Before != res.After {
		return fmt.Sprintf("Reconciliation found %s changed at Stripe without an event: %s → %s", ref, res.Before, res.After)
	}
	return fmt.Sprintf("Reconciliation found %s changed at Stripe without an event (%s)", ref, res.After)
}

// SyncedObject is a mirrored object and when the mirror last learned its
// state: the created time of the event, or the time of the read, that
// wrote it.
type SyncedObject struct {
	Ref      ObjectRef
	SyncedAt time.Time
}

var tableOf = map[ObjectKind]string{
	KindCustomer: "billing_customers", KindSubscription: "billing_subscriptions", KindInvoice: "billing_invoices",
	KindCharge: "billing_charges", KindDispute: "billing_disputes",
}

// SyncedBefore returns those of refs that are mirrored and were last
// synced strictly before cutoff, in kind then id order. Objects the mirror
// has never seen are not returned: they have no state to go stale.
func (s *Store) SyncedBefore(ctx context.Context, refs []ObjectRef, cutoff time.Time) ([]SyncedObject, error) {
	byKind := map[ObjectKind][]string{}
	for _, r := range refs {
		if readable(r.Kind) {
			byKind[r.Kind] = append(byKind[r.Kind], r.ID)
		}
	}
	var out []SyncedObject
	for _, kind := range ReadableKinds {
		ids := byKind[kind]
		for start := 0; start < len(ids); start += 500 {
			chunk := ids[start:min(start+500, len(ids))]
			var rows []struct {
				ID           string
				EventCreated time.Time
			}
			if err := s.conn(ctx).Table(tableOf[kind]).Select("id, event_created").
				Where("id IN ? AND event_created < ?", chunk, cutoff.UTC()).Find(&rows).Error; err != nil {
				return nil, fmt.Errorf("find stale %ss: %w", kind, err)
			}
			for _, r := range rows {
				out = append(out, SyncedObject{Ref: ObjectRef{Kind: kind, ID: r.ID}, SyncedAt: r.EventCreated.UTC()})
			}
		}
	}
	order := map[ObjectKind]int{}
	for i, k := range ReadableKinds {
		order[k] = i
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Ref.Kind != out[j].Ref.Kind {
			return order[out[i].Ref.Kind] < order[out[j].Ref.Kind]
		}
		return out[i].Ref.ID < out[j].Ref.ID
	})
	return out, nil
}
