package cases

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/httpx"
)

// caseRow is a row of the cases table. Only the store sees it.
type caseRow struct {
	ID                      string `gorm:"primaryKey"`
	Kind                    string
	State                   string
	Status                  string
	Resolution              *string
	Priority                string
	PriorityRank            int
	Assignee                *string
	Team                    string
	BusinessLine            *string
	Channel                 string
	Tags                    string
	Title                   string
	Description             string
	Inquiry                 bool
	NeedsAttention          bool
	SubjectID               *string
	CustomerID              *string
	SubscriptionID          *string
	InvoiceID               *string
	ChargeID                *string
	DisputeID               *string
	RefundID                *string
	FraudWarningID          *string
	Amount                  *int64
	Currency                *string
	EvidenceDueBy           *time.Time
	FirstResponseDue        time.Time
	ResolutionDue           time.Time
	FirstRespondedAt        *time.Time
	FirstResponseBreachedAt *time.Time
	ResolutionBreachedAt    *time.Time
	Breached                bool
	EscalatedAt             *time.Time
	SLAPausedAt             *time.Time `gorm:"column:sla_paused_at"`
	SLAPausedTotalUS        int64      `gorm:"column:sla_paused_total_us"`
	// SLADue is SLA.NextDue(), stored for sort=sla (migration 0017).
	SLADue    *time.Time `gorm:"column:sla_due"`
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
	ClosedAt  *time.Time
}

func (caseRow) TableName() string { return "cases" }

func utcp(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func toRow(c Case) caseRow {
	tags, _ := json.Marshal(c.Tags)
	if c.Tags == nil {
		tags = []byte("[]")
	}
	return caseRow{
		ID: c.ID, Kind: string(c.Kind), State: c.State, Status: string(c.Status), Resolution: c.Resolution,
		Priority: string(c.Priority), PriorityRank: c.Priority.Rank(), Assignee: c.Assignee, Team: string(c.Team),
		BusinessLine: c.BusinessLine, Channel: string(c.Channel), Tags: string(tags), Title: c.Title,
		Description: c.Description, Inquiry: c.Inquiry, NeedsAttention: c.NeedsAttention, SubjectID: c.Subject,
		CustomerID: c.Links.Customer, SubscriptionID: c.Links.Subscription, InvoiceID: c.Links.Invoice,
		ChargeID: c.Links.Charge, DisputeID: c.Links.Dispute, RefundID: c.Links.Refund, FraudWarningID: c.Links.FraudWarning,
		Amount: c.Amount, Currency: c.Currency, EvidenceDueBy: utcp(c.EvidenceDueBy),
		FirstResponseDue: c.SLA.FirstResponseDue.UTC(), ResolutionDue: c.SLA.ResolutionDue.UTC(),
		FirstRespondedAt: utcp(c.SLA.FirstRespondedAt), FirstResponseBreachedAt: utcp(c.SLA.FirstResponseBreachedAt),
		ResolutionBreachedAt: utcp(c.SLA.ResolutionBreachedAt), Breached: c.SLA.Breached, EscalatedAt: utcp(c.EscalatedAt),
		Version: c.Version, CreatedAt: c.CreatedAt.UTC(), UpdatedAt: c.UpdatedAt.UTC(), ClosedAt: utcp(c.ClosedAt),
		SLAPausedAt: utcp(c.SLA.PausedAt), SLAPausedTotalUS: c.SLA.PausedTotal.D().Microseconds(),
		SLADue: timep(c.SLA.NextDue().UTC()),
	}
}

func (r caseRow) toCase() Case {
	var tags []string
	if err := json.Unmarshal([]byte(r.Tags), &tags); err != nil || tags == nil {
		tags = []string{}
	}
	c := Case{
		ID: r.ID, Kind: Kind(r.Kind), State: r.State, Status: Status(r.Status), Resolution: r.Resolution,
		Priority: Priority(r.Priority), Assignee: r.Assignee, Team: Team(r.Team), BusinessLine: r.BusinessLine,
		Channel: Channel(r.Channel), Tags: tags, Title: r.Title, Description: r.Description, Inquiry: r.Inquiry,
		Subject: r.SubjectID, NeedsAttention: r.NeedsAttention,
		Links: Links{Customer: r.CustomerID, Subscription: r.SubscriptionID, Invoice: r.InvoiceID, Charge: r.ChargeID,
			Dispute: r.DisputeID, Refund: r.RefundID, FraudWarning: r.FraudWarningID},
		Amount: r.Amount, Currency: r.Currency, EvidenceDueBy: utcp(r.EvidenceDueBy),
		SLA: SLA{FirstResponseDue: r.FirstResponseDue.UTC(), ResolutionDue: r.ResolutionDue.UTC(),
			FirstRespondedAt: utcp(r.FirstRespondedAt), Breached: r.Breached,
			FirstResponseBreachedAt: utcp(r.FirstResponseBreachedAt), ResolutionBreachedAt: utcp(r.ResolutionBreachedAt)},
		EscalatedAt: utcp(r.EscalatedAt), Version: r.Version, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
		ClosedAt: utcp(r.ClosedAt),
	}
	c.SLA.PausedAt, c.SLA.PausedTotal = utcp(r.SLAPausedAt), Duration(time.Duration(r.SLAPausedTotalUS)*time.Microsecond)
	if lc, ok := LifecycleOf(c.Kind); ok {
		c.SLA.Role = lc.RoleOf(c.State)
		c.AllowedTransitions = lc.Available(c.State, true)
	} else {
		c.AllowedTransitions = []string{}
	}
	return c
}

// mutableColumns are the columns an update writes (everything but id, kind,
// channel, created_at).
func (r caseRow) mutableColumns() map[string]any {
	return map[string]any{
		"state": r.State, "status": r.Status, "resolution": r.Resolution, "priority": r.Priority,
		"priority_rank": r.PriorityRank, "assignee": r.Assignee, "team": r.Team, "business_line": r.BusinessLine,
		"tags": r.Tags, "title": r.Title, "description": r.Description, "inquiry": r.Inquiry, "needs_attention": r.NeedsAttention, "subject_id": r.SubjectID,
		"customer_id": r.CustomerID, "subscription_id": r.SubscriptionID, "invoice_id": r.InvoiceID,
		"charge_id": r.ChargeID, "dispute_id": r.DisputeID, "refund_id": r.RefundID, "fraud_warning_id": r.FraudWarningID,
		"amount": r.Amount, "currency": r.Currency, "evidence_due_by": r.EvidenceDueBy,
		"first_response_due": r.FirstResponseDue, "resolution_due": r.ResolutionDue,
		"first_responded_at": r.FirstRespondedAt, "first_response_breached_at": r.FirstResponseBreachedAt,
		"resolution_breached_at": r.ResolutionBreachedAt, "breached": r.Breached, "escalated_at": r.EscalatedAt,
		"version": r.Version, "updated_at": r.UpdatedAt, "closed_at": r.ClosedAt,
		"sla_paused_at": r.SLAPausedAt, "sla_paused_total_us": r.SLAPausedTotalUS, "sla_due": r.SLADue,
	}
}

// entryRow is a row of case_timeline.
type entryRow struct {
	ID         int64 `gorm:"primaryKey"`
	CaseID     string
	At         time.Time
	Actor      string
	ActorType  string
	Type       string
	Summary    string
	EventID    *string
	OccurredAt *time.Time
	FromState  *string
	ToState    *string
	Transition *string
	Body       *string
}

func (entryRow) TableName() string { return "case_timeline" }

func (r entryRow) toEntry() TimelineEntry {
	return TimelineEntry{ID: r.ID, CaseID: r.CaseID, At: r.At.UTC(), Actor: r.Actor, ActorType: ActorType(r.ActorType),
		Type: r.Type, Summary: r.Summary, EventID: r.EventID, OccurredAt: utcp(r.OccurredAt), FromState: r.FromState,
		ToState: r.ToState, Transition: r.Transition, Body: r.Body}
}

// store is the cases storage layer: every query the package runs.
type store struct {
	dialect db.Dialect
}

// lock adds FOR UPDATE on PostgreSQL (SQLite has one writer anyway).
func (st store) lock(q *gorm.DB) *gorm.DB {
	return st.dialect.ForUpdate(q)
}

// get returns case id; ENOTFOUND when there is none. forUpdate locks the
// row until tx ends (PostgreSQL).
func (st store) get(ctx context.Context, g *gorm.DB, id string, forUpdate bool) (Case, error) {
	if !validID(id) {
		return Case{}, errs.NotFound("no case %s", id)
	}
	q := g.WithContext(ctx).Where("id = ?", id)
	if forUpdate {
		q = st.lock(q)
	}
	var r caseRow
	err := q.Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Case{}, errs.NotFound("no case %s", id)
	}
	if err != nil {
		return Case{}, fmt.Errorf("get case %s: %w", id, err)
	}
	// Out of the caller's scope answers exactly like a missing id, so a
	// scoped user learns nothing of the case's existence (README "Scoping").
	if !auth.ScopeOf(ctx).AllowsCase(r.Team, r.BusinessLine) {
		return Case{}, errs.NotFound("no case %s", id)
	}
	return r.toCase(), nil
}

// caseInScope narrows q, a query on a table whose column names a case, to
// rows of cases in the scope of ctx's principal.
func caseInScope(ctx context.Context, q *gorm.DB, column string) *gorm.DB {
	if cond, args := auth.ScopeOf(ctx).CaseSQL("scope_c"); cond != "" {
		return q.Where(column+" IN (SELECT scope_c.id FROM cases scope_c WHERE "+cond+")", args...)
	}
	return q
}

// inScope narrows q, a query on the cases table (aliased alias, "" for
// none), to the cases in the scope of ctx's principal.
func inScope(ctx context.Context, q *gorm.DB, alias string) *gorm.DB {
	if cond, args := auth.ScopeOf(ctx).CaseSQL(alias); cond != "" {
		return q.Where(cond, args...)
	}
	return q
}

// forSubject returns the open case of kind on subject, else the most
// recently created closed one; ok is false when there is none. The row is
// locked (PostgreSQL).
func (st store) forSubject(ctx context.Context, tx *gorm.DB, kind Kind, subject string) (Case, bool, error) {
	var rows []caseRow
	q := tx.WithContext(ctx).Where("kind = ? AND subject_id = ?", string(kind), subject).
		Order("CASE WHEN status = 'open' THEN 0 ELSE 1 END, created_at DESC, id DESC").Limit(1)
	if err := st.lock(q).Find(&rows).Error; err != nil {
		return Case{}, false, fmt.Errorf("find %s case for %s: %w", kind, subject, err)
	}
	if len(rows) == 0 {
		return Case{}, false, nil
	}
	return rows[0].toCase(), true, nil
}

// byLink returns the cases of kind whose link column equals id (only open
// ones when openOnly), locked (PostgreSQL), oldest first.
func (st store) byLink(ctx context.Context, tx *gorm.DB, kind Kind, column, id string, openOnly bool) ([]Case, error) {
	if !isLinkColumn(column) {
		return nil, fmt.Errorf("cases: %q is not a link column", column)
	}
	var rows []caseRow
	q := tx.WithContext(ctx).Where("kind = ? AND "+column+" = ?", string(kind), id).Order("created_at, id")
	if openOnly {
		q = q.Where("status = 'open'")
	}
	if err := st.lock(q).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("find %s cases by %s %s: %w", kind, column, id, err)
	}
	out := make([]Case, len(rows))
	for i, r := range rows {
		out[i] = r.toCase()
	}
	return out, nil
}

// withoutCustomer returns the cases whose link column equals id and that
// have no customer link yet, locked (PostgreSQL).
func (st store) withoutCustomer(ctx context.Context, tx *gorm.DB, column, id string) ([]Case, error) {
	if !isLinkColumn(column) {
		return nil, fmt.Errorf("cases: %q is not a link column", column)
	}
	var rows []caseRow
	q := tx.WithContext(ctx).Where(column+" = ? AND customer_id IS NULL", id).Order("created_at, id")
	if err := st.lock(q).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("find cases of %s without a customer: %w", id, err)
	}
	out := make([]Case, len(rows))
	for i, r := range rows {
		out[i] = r.toCase()
	}
	return out, nil
}

var linkColumns = []string{"customer_id", "subscription_id", "invoice_id", "charge_id", "dispute_id", "refund_id", "fraud_warning_id"}

func isLinkColumn(c string) bool {
	for _, l := range linkColumns {
		if l == c {
			return true
		}
	}
	return false
}

// insert stores a new case. It returns false, without error, when the
// one-open-case index already holds an open case of the same kind and
// subject (another transaction won the race); the caller then loads that one.
func (st store) insert(ctx context.Context, tx *gorm.DB, c Case) (bool, error) {
	r := toRow(c)
	res := tx.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&r)
	if res.Error != nil {
		return false, fmt.Errorf("insert %s case: %w", c.Kind, res.Error)
	}
	return res.RowsAffected == 1, nil
}

// update writes c over the row whose version is prev. Zero rows means
// somebody else wrote first: ECONFLICT (code version_conflict). A write that
// would make a second open case of a kind and subject is ECONFLICT too.
func (st store) update(ctx context.Context, tx *gorm.DB, c Case, prev int64) error {
	r := toRow(c)
	res := tx.WithContext(ctx).Model(&caseRow{}).Where("id = ? AND version = ?", c.ID, prev).Updates(r.mutableColumns())
	if errors.Is(res.Error, gorm.ErrDuplicatedKey) {
		return errs.Coded(errs.ECONFLICT, "open_case_exists", "another open %s case exists for %s", c.Kind, deref(c.Subject))
	}
	if res.Error != nil {
		return fmt.Errorf("update case %s: %w", c.ID, res.Error)
	}
	if res.RowsAffected == 0 {
		return errs.Coded(errs.ECONFLICT, "version_conflict", "case %s was changed by someone else (version %d is stale)", c.ID, prev).
			WithDetails(map[string]any{"version": prev})
	}
	return nil
}

// hasEvent reports whether event id is already on case id's timeline in an
// entry of one of types (any type when types is nil).
func (st store) hasEvent(ctx context.Context, tx *gorm.DB, caseID, eventID string, types []string) (bool, error) {
	var n int64
	q := tx.WithContext(ctx).Model(&entryRow{}).Where("case_id = ? AND event_id = ?", caseID, eventID)
	if types != nil {
		q = q.Where("type IN ?", types)
	}
	if err := q.Count(&n).Error; err != nil {
		return false, fmt.Errorf("check timeline of %s for %s: %w", caseID, eventID, err)
	}
	return n > 0, nil
}

// appendEntry appends e. An entry whose (case, event id, type) is already
// there is skipped (false, nil): each writer's entry for a provider event
// lands on a timeline once.
func (st store) appendEntry(ctx context.Context, tx *gorm.DB, e TimelineEntry) (bool, error) {
	r := entryRow{CaseID: e.CaseID, At: e.At.UTC(), Actor: e.Actor, ActorType: string(e.ActorType), Type: e.Type,
		Summary: e.Summary, EventID: e.EventID, OccurredAt: utcp(e.OccurredAt), FromState: e.FromState, ToState: e.ToState,
		Transition: e.Transition, Body: e.Body}
	q := tx.WithContext(ctx)
	if e.EventID != nil {
		q = q.Clauses(clause.OnConflict{DoNothing: true})
	}
	res := q.Create(&r)
	if res.Error != nil {
		return false, fmt.Errorf("append %s to case %s: %w", e.Type, e.CaseID, res.Error)
	}
	return res.RowsAffected == 1, nil
}

// insertEntry appends e, which has no provider event, and returns it with
// the id it was stored under.
func (st store) insertEntry(ctx context.Context, tx *gorm.DB, e TimelineEntry) (TimelineEntry, error) {
	r := entryRow{CaseID: e.CaseID, At: e.At.UTC(), Actor: e.Actor, ActorType: string(e.ActorType), Type: e.Type,
		Summary: e.Summary, EventID: e.EventID, OccurredAt: utcp(e.OccurredAt), FromState: e.FromState, ToState: e.ToState,
		Transition: e.Transition, Body: e.Body}
	if err := tx.WithContext(ctx).Create(&r).Error; err != nil {
		return TimelineEntry{}, fmt.Errorf("append %s to case %s: %w", e.Type, e.CaseID, err)
	}
	e.ID = r.ID
	return e, nil
}

// timeline returns case id's entries, oldest first.
func (st store) timeline(ctx context.Context, g *gorm.DB, caseID string) ([]TimelineEntry, error) {
	var rows []entryRow
	if err := g.WithContext(ctx).Where("case_id = ?", caseID).Order("at, id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("timeline of %s: %w", caseID, err)
	}
	out := make([]TimelineEntry, len(rows))
	for i, r := range rows {
		out[i] = r.toEntry()
	}
	return out, nil
}

// SLAFilter narrows a list to breached cases or open ones due soon.
type SLAFilter string

// SLA filters.
const (
	SLABreached SLAFilter = "breached"
	SLADueSoon  SLAFilter = "due_soon"
)

// Sort orders a list. A leading "-" reverses an order.
type Sort string

// Sorts. created_at is oldest first, -created_at (the default) newest
// first; updated_at and -updated_at likewise by the last change; priority is
// highest first, then oldest, and -priority exactly the reverse (lowest
// first, then newest); sla is soonest resolution due time first and -sla
// latest first. Every order ends with the case id, so rows with equal keys
// (two cases due at the same second) still have one order, and each is
// served by one index (migrations 0004 and 0017) walked forwards or
// backwards.
const (
	SortCreated      Sort = "created_at"
	SortCreatedDesc  Sort = "-created_at"
	SortUpdated      Sort = "updated_at"
	SortUpdatedDesc  Sort = "-updated_at"
	SortPriority     Sort = "priority"
	SortPriorityDesc Sort = "-priority"
	SortSLA          Sort = "sla"
	SortSLADesc      Sort = "-sla"
)

// Sorts lists every sort order, the default first.
func Sorts() []Sort {
	return []Sort{SortCreatedDesc, SortCreated, SortUpdatedDesc, SortUpdated, SortSLA, SortSLADesc, SortPriority, SortPriorityDesc}
}

// ParseSort returns the sort named s ("" is the default, -created_at), or
// EINVALID (invalid_sort).
func ParseSort(s string) (Sort, error) {
	if s == "" {
		return SortCreatedDesc, nil
	}
	for _, o := range Sorts() {
		if string(o) == s {
			return o, nil
		}
	}
	return "", errs.Coded(errs.EINVALID, "invalid_sort", "sort must be one of %s (got %q)", joinStrings(Sorts()), s)
}

// keyset says how a sort order walks the table: the time column of its key
// and its direction. priority puts priority_rank before the time column,
// in the opposite direction (highest first, then oldest).
func (o Sort) keyset() (column string, desc, byRank bool) {
	switch o {
	case SortCreated:
		return "created_at", false, false
	case SortCreatedDesc:
		return "created_at", true, false
	case SortUpdated:
		return "updated_at", false, false
	case SortUpdatedDesc:
		return "updated_at", true, false
	case SortSLA:
		return "sla_due", false, false
	case SortSLADesc:
		return "sla_due", true, false
	case SortPriority:
		return "created_at", false, true
	case SortPriorityDesc:
		return "created_at", true, true
	}
	return "", false, false
}

// Filter narrows List; zero fields match everything.
type Filter struct {
	Kind         Kind
	State        string
	Status       Status
	Assignee     string // a name, or "none" for unassigned
	Team         Team
	Priority     Priority
	BusinessLine string
	Customer     string
	// Subject matches any linked provider id.
	Subject string
	// NeedsAttention, when set, keeps only cases flagged (true) or not
	// flagged (false) for a person.
	NeedsAttention *bool
	SLA            SLAFilter
	CreatedAfter   time.Time
	CreatedBefore  time.Time
	Sort           Sort
}

// listCursor is the keyset position after the last row of a page.
type listCursor struct {
	Sort Sort      `json:"s"`
	T    time.Time `json:"t"`
	Rank int       `json:"r,omitempty"`
	ID   string    `json:"i"`
}

// list returns one page of cases matching f, in f.Sort order, using keyset
// pagination (never offsets) so every page costs the same.
func (st store) list(ctx context.Context, g *gorm.DB, f Filter, page httpx.PageRequest, now time.Time, dueSoon time.Duration) ([]Case, *string, error) {
	if f.Sort == "" {
		f.Sort = SortCreatedDesc
	}
	q := inScope(ctx, g.WithContext(ctx).Model(&caseRow{}), "")
	if f.Kind != "" {
		q = q.Where("kind = ?", string(f.Kind))
	}
	if f.State != "" {
		q = q.Where("state = ?", f.State)
	}
	if f.Status != "" {
		q = q.Where("status = ?", string(f.Status))
	}
	switch f.Assignee {
	case "":
	case "none":
		q = q.Where("assignee IS NULL")
	default:
		q = q.Where("assignee = ?", f.Assignee)
	}
	if f.Team != "" {
		q = q.Where("team = ?", string(f.Team))
	}
	if f.Priority != "" {
		q = q.Where("priority_rank = ?", f.Priority.Rank())
	}
	if f.BusinessLine != "" {
		q = q.Where("business_line = ?", f.BusinessLine)
	}
	if f.Customer != "" {
		q = q.Where("customer_id = ?", f.Customer)
	}
	if f.NeedsAttention != nil {
		q = q.Where("needs_attention = ?", *f.NeedsAttention)
	}
	if f.Subject != "" {
		conds := make([]string, len(linkColumns))
		args := make([]any, len(linkColumns))
		for i, c := range linkColumns {
			conds[i] = c + " = ?"
			args[i] = f.Subject
		}
		q = q.Where("("+strings.Join(conds, " OR ")+")", args...)
	}
	switch f.SLA {
	case "":
	case SLABreached:
		q = q.Where("breached = TRUE")
	case SLADueSoon:
		soon := now.Add(dueSoon).UTC()
		q = q.Where("status = 'open' AND breached = FALSE AND ((first_responded_at IS NULL AND first_response_due <= ?) OR resolution_due <= ?)", soon, soon)
		// The same condition said of sla_due (the earlier of the two that
		// still count), so cases_open_sla_idx can stop at soon.
		q = q.Where("sla_due <= ?", soon)
		q = q.Where("sla_paused_at IS NULL") // a paused clock is not about to run out
	}
	if !f.CreatedAfter.IsZero() {
		q = q.Where("created_at > ?", f.CreatedAfter.UTC())
	}
	if !f.CreatedBefore.IsZero() {
		q = q.Where("created_at < ?", f.CreatedBefore.UTC())
	}
	if contradicts(f) {
		return []Case{}, nil, nil
	}
	var cur listCursor
	ok, err := httpx.DecodeCursor(page.Cursor, &cur)
	if err != nil {
		return nil, nil, err
	}
	if ok && (cur.Sort != f.Sort || cur.ID == "") {
		return nil, nil, errs.Coded(errs.EINVALID, "invalid_cursor", "cursor belongs to another sort order")
	}
	col, desc, byRank := f.Sort.keyset()
	if col == "" {
		return nil, nil, errs.Coded(errs.EINVALID, "invalid_sort", "sort must be one of %s", joinStrings(Sorts()))
	}
	cmp, dir := ">", ""
	if desc {
		cmp, dir = "<", " DESC"
	}
	if ok {
		// col and cmp come from the fixed table above, never from input.
		after := "(" + col + ", id) " + cmp + " (?, ?)"
		if byRank {
			rankCmp := "<" // priority: highest first, so later rows rank lower
			if desc {
				rankCmp = ">"
			}
			q = q.Where("(priority_rank "+rankCmp+" ? OR (priority_rank = ? AND "+after+"))", cur.Rank, cur.Rank, cur.T.UTC(), cur.ID)
		} else {
			q = q.Where(after, cur.T.UTC(), cur.ID)
		}
	}
	if byRank {
		rankDir := " DESC"
		if desc {
			rankDir = ""
		}
		q = q.Order("priority_rank" + rankDir)
	}
	q = q.Order(col + dir).Order("id" + dir)
	var rows []caseRow
	if err := q.Limit(page.Limit + 1).Find(&rows).Error; err != nil {
		return nil, nil, fmt.Errorf("list cases: %w", err)
	}
	var next *string
	if len(rows) > page.Limit {
		rows = rows[:page.Limit]
		last := rows[len(rows)-1]
		c := listCursor{Sort: f.Sort, ID: last.ID, T: last.CreatedAt.UTC(), Rank: last.PriorityRank}
		switch col {
		case "updated_at":
			c.T = last.UpdatedAt.UTC()
		case "sla_due":
			c.T = last.toCase().SLA.NextDue().UTC()
		}
		s := httpx.EncodeCursor(c)
		next = &s
	}
	out := make([]Case, len(rows))
	for i, r := range rows {
		out[i] = r.toCase()
	}
	return out, next, nil
}

// contradicts reports whether f asks for a state together with a status
// that state can never have (status=open&state=won): nothing can match, so
// the query is not run at all.
func contradicts(f Filter) bool {
	if f.State == "" || f.Status == "" {
		return false
	}
	for _, lc := range lifecycles {
		if (f.Kind == "" || lc.Kind == f.Kind) && lc.HasState(f.State) && (lc.IsClosed(f.State) == (f.Status == StatusClosed)) {
			return false
		}
	}
	return true
}

// breachCandidates returns up to n open cases with an SLA past due and not
// yet marked, soonest due first, locked and skipped when another sweeper
// holds them (PostgreSQL).
func (st store) breachCandidates(ctx context.Context, tx *gorm.DB, now time.Time, n int) ([]Case, error) {
	q := tx.WithContext(ctx).
		Where("status = 'open' AND ((first_responded_at IS NULL AND first_response_breached_at IS NULL AND first_response_due < ?) OR (resolution_breached_at IS NULL AND resolution_due < ?))", now.UTC(), now.UTC()).
		Where("sla_paused_at IS NULL"). // paused and stopped clocks do not breach
		Order("resolution_due, id").Limit(n)
	q = st.dialect.ForUpdateSkipLocked(q)
	var rows []caseRow
	if err := q.Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("find SLA breaches: %w", err)
	}
	out := make([]Case, len(rows))
	for i, r := range rows {
		out[i] = r.toCase()
	}
	return out, nil
}

// dueSoonCandidates returns up to n open cases, by id after afterID, with a
// running clock — first response (while unanswered) or resolution — not
// breached and due in (now, to], that the last sweep did not see there: due
// after upTo, or changed since (a new case, a clock that moved).
func (st store) dueSoonCandidates(ctx context.Context, tx *gorm.DB, now, to, upTo, since time.Time, afterID string, n int) ([]Case, error) {
	a, b, u, c := now.UTC(), to.UTC(), upTo.UTC(), since.UTC()
	q := tx.WithContext(ctx).
		Where("status = 'open' AND sla_paused_at IS NULL AND id > ?", afterID).
		Where(`((first_responded_at IS NULL AND first_response_breached_at IS NULL AND first_response_due > ? AND first_response_due <= ? AND (first_response_due > ? OR updated_at >= ?))
 OR (resolution_breached_at IS NULL AND resolution_due > ? AND resolution_due <= ? AND (resolution_due > ? OR updated_at >= ?)))`, a, b, u, c, a, b, u, c).
		Order("id").Limit(n)
	var rows []caseRow
	if err := q.Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("find SLAs due soon: %w", err)
	}
	out := make([]Case, len(rows))
	for i, r := range rows {
		out[i] = r.toCase()
	}
	return out, nil
}

// kindCount is one row of a GROUP BY kind count.
type kindCount struct {
	Kind     string
	Breached bool
	N        int64
}

// openCounts counts open cases by kind and breached flag.
func (st store) openCounts(ctx context.Context, g *gorm.DB) ([]kindCount, error) {
	var out []kindCount
	err := g.WithContext(ctx).Model(&caseRow{}).Select("kind, breached, COUNT(*) AS n").
		Where("status = 'open'").Group("kind, breached").Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("count open cases: %w", err)
	}
	return out, nil
}
