package cases

import (
	"fmt"

	"github.com/recourse-hq/recourse/billing"
)

// Statuses are open strings: newer Stripe API versions add values (a
// dispute's prevented came with 2025-08-27). A status Recourse does not know
// must neither crash nor strand a case: the mirror keeps it, every open case
// of the object stays where it is, is flagged for a person
// (Case.NeedsAttention, filterable in GET /cases) and its timeline says
// "Stripe reported status X, which Recourse does not know yet".
//
// Like everything else here it follows the object's current mirror state,
// not the event: whatever order events arrive in, an object whose current
// status is unknown ends with its open cases flagged — once per case and
// status, so a person who cleared the flag is not asked again for the same
// status.

// unknownStatusNote is the timeline sentence for a status Recourse does not
// know.
func unknownStatusNote(status string) string {
	return fmt.Sprintf("Stripe reported status %s, which Recourse does not know yet; a person should look", status)
}

// flagUnknownStatus flags the open cases linked to the object (column = id)
// when its current status is not one known reports as known.
func (a *applier) flagUnknownStatus(known func(string) bool, column, id, status string) error {
	if status == "" || id == "" || known(status) {
		return nil
	}
	note := unknownStatusNote(status)
	for _, k := range Kinds() {
		cs, err := a.s.st.byLink(a.ctx, a.tx, k, column, id, true)
		if err != nil {
			return err
		}
		for _, c := range cs {
			var n int64
			if err := a.tx.WithContext(a.ctx).Model(&entryRow{}).
				Where("case_id = ? AND type = ? AND summary LIKE ?", c.ID, EntryUnknownStatus, "%Stripe reported status "+status+",%").
				Count(&n).Error; err != nil {
				return fmt.Errorf("check timeline of %s for status %s: %w", c.ID, status, err)
			}
			if n > 0 {
				continue // said before; the flag is the person's to clear
			}
			next := c
			next.NeedsAttention = true
			if err := a.s.save(a.ctx, a.tx, c, &next); err != nil {
				return err
			}
			if _, err := a.s.st.appendEntry(a.ctx, a.tx, a.entry(c.ID, EntryUnknownStatus, a.summary()+" — "+note)); err != nil {
				return err
			}
		}
	}
	return nil
}

// knownStatus returns the known-status test for objects of kind.
func knownStatus(kind billing.ObjectKind) func(string) bool {
	return func(s string) bool { return billing.KnownStatus(kind, s) }
}
