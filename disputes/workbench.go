package disputes

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/billing"
	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/httpx"
	"github.com/recourse-hq/recourse/internal/pan"
)

// Mirror is what the workbench reads of the billing mirror (*billing.Store).
type Mirror interface {
	Customer(ctx context.Context, id string) (billing.Customer, error)
	Charge(ctx context.Context, id string) (billing.Charge, error)
	Dispute(ctx context.Context, id string) (billing.Dispute, error)
	ChargesByCustomer(ctx context.Context, customerID string) ([]billing.Charge, error)
	SubscriptionsByCustomer(ctx context.Context, customerID string) ([]billing.Subscription, error)
	InvoicesBySubscription(ctx context.Context, subID string) ([]billing.Invoice, error)
	RefundsByCharge(ctx context.Context, chargeID string) ([]billing.Refund, error)
	FraudWarningsByCharge(ctx context.Context, chargeID string) ([]billing.FraudWarning, error)
	DisputeOutcomes(ctx context.Context, reason, brand string) (won, lost int64, err error)
	Timeline(ctx context.Context, customerID string, page httpx.PageRequest) (httpx.List[billing.TimelineEntry], error)
}

// CaseReader is what the workbench needs of cases (*cases.Service): the
// case, and a timeline entry for what the analyst did. The case timeline is
// not evidence (it holds internal notes); the customer's story comes from
// the mirror and the facts.
type CaseReader interface {
	Get(ctx context.Context, id string) (cases.Case, error)
	GetInTx(ctx context.Context, tx *gorm.DB, id string) (cases.Case, error)
	Record(ctx context.Context, tx *gorm.DB, caseID, actor, entryType, summary, eventID string) error
}

// Auditor writes the audit log (*audit.Log).
type Auditor interface {
	Record(ctx context.Context, tx *gorm.DB, e audit.Entry) error
}

// WorkbenchOptions wires a Workbench.
type WorkbenchOptions struct {
	DB      *db.DB
	Clock   clock.Clock
	Billing Mirror
	Cases   CaseReader
	Facts   FactReader
	Policy  Policy
	Audit   Auditor
}

// Workbench is the dispute analyst's workbench: the evidence document of a
// dispute case (deadline, checklist, CE 3.0, recommendation, draft), the
// assembly of the evidence draft and its rebuttal packet, the analyst's
// edits, and — for the actions machinery (actions.Evidence) — the package
// that leaves for Stripe and the record that it left.
type Workbench struct {
	db     *db.DB
	clock  clock.Clock
	mirror Mirror
	cases  CaseReader
	facts  FactReader
	policy Policy
	audit  Auditor
}

// NewWorkbench returns the workbench. Facts may be nil (no facts yet: the
// evidence comes from the mirror and the timeline alone).
func NewWorkbench(o WorkbenchOptions) *Workbench {
	f := o.Facts
	if f == nil {
		f = NoFacts{}
	}
	return &Workbench{db: o.DB, clock: o.Clock, mirror: o.Billing, cases: o.Cases, facts: f, policy: o.Policy, audit: o.Audit}
}

// NoFacts is a FactReader that holds nothing.
type NoFacts struct{}

// Facts returns no facts.
func (NoFacts) Facts(context.Context, string, FactQuery) ([]Fact, error) { return nil, nil }

// PolicyDocument is always ENOTFOUND.
func (NoFacts) PolicyDocument(_ context.Context, key, version string) (PolicyDocument, error) {
	return PolicyDocument{}, errs.NotFound("policy %s version %s is not on record", key, version)
}

// Timeline entry types the workbench writes on the case.
const (
	EntryEvidenceAssembled = "evidence_assembled"
	EntryEvidenceEdited    = "evidence_edited"
)

// --- the evidence document --------------------------------------------------

// Deadline is where the dispute stands against its evidence deadline.
type Deadline struct {
	DueBy       *time.Time `json:"due_by"`
	SecondsLeft int64      `json:"seconds_left"`
	Left        string     `json:"left"`    // "2d 5h", "overdue by 3h"
	Urgency     string     `json:"urgency"` // overdue, critical (<24h), high (<72h), normal, none
	Summary     string     `json:"summary"`
}

// Urgencies of the workbench's deadline.
const (
	UrgencyOverdue  = "overdue"
	UrgencyCritical = "critical"
	UrgencyHigh     = "high"
	UrgencyNormal   = "normal"
	UrgencyNone     = "none"
)

// Item statuses.
const (
	ItemHave        = "have"         // in the draft
	ItemCanAssemble = "can_assemble" // not in the draft, but assembly would fill it
	ItemMissing     = "missing"      // nothing on record fills it
)

// ChecklistItem is one checklist item with where the case stands on it.
type ChecklistItem struct {
	Field  EvidenceField `json:"field"`
	Need   Need          `json:"need"`
	Status string        `json:"status"`
	Proves string        `json:"why_it_matters"`
	Source string        `json:"source"`
}

// ChecklistView is the checklist of the dispute with each item's status.
type ChecklistView struct {
	Basis         Basis           `json:"basis"`
	Contestable   bool            `json:"contestable"`
	RebuttalField EvidenceField   `json:"rebuttal_field,omitempty"`
	Items         []ChecklistItem `json:"items"`
	Notes         []string        `json:"notes"`
	// Strength is 0..1: required items count double, an item we have
	// counts 1, one assembly would fill 0.75, a missing one 0.
	Strength float64 `json:"strength"`
}

// CE3View is the Visa CE 3.0 verdict from our own history.
type CE3View struct {
	Applies  bool        `json:"applies"` // Visa 10.4 only
	Eligible bool        `json:"eligible"`
	Summary  string      `json:"summary"`
	Selected []string    `json:"selected"`
	Priors   []CE3Prior  `json:"priors"`
	Disputed CE3Identity `json:"disputed"`
	Missing  []string    `json:"missing"`
}

// CE3Identity is the identifiers found for the disputed charge.
type CE3Identity struct {
	Charge            string `json:"charge"`
	PurchaseIP        string `json:"purchase_ip,omitempty"`
	DeviceID          string `json:"device_id,omitempty"`
	DeviceFingerprint string `json:"device_fingerprint,omitempty"`
	AccountID         string `json:"account_id,omitempty"`
}

// Recommendation is fight or accept, with the numbers. Money is in minor
// units of Currency.
type Recommendation struct {
	Action   string `json:"action"` // fight | accept
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	Fees     Fees   `json:"fees"`
	// WinRate is the win rate of decided disputes of this reason and brand
	// in the mirror, with the Beta prior: (won + prior·weight) / (decided +
	// weight).
	WinRate float64 `json:"win_rate"`
	Won     int64   `json:"won"`
	Lost    int64   `json:"lost"`
	// WinChance is WinRate adjusted by the checklist's strength: rate ×
	// (0.5 + strength), at most 0.95.
	WinChance         float64 `json:"win_chance"`
	ChecklistStrength float64 `json:"checklist_strength"`
	// LifetimeValue is the customer's succeeded charges net of refunds.
	LifetimeValue int64 `json:"customer_lifetime_value"`
	// ExpectedFight and ExpectedAccept are the expected money outcomes
	// (negative: a cost): accepting loses the amount and the dispute fee;
	// fighting loses the dispute fee always, plus amount and counter fee
	// when lost.
	ExpectedFight  int64  `json:"expected_value_fight"`
	ExpectedAccept int64  `json:"expected_value_accept"`
	Why            string `json:"why"`
}

// DraftView is the current evidence draft.
type DraftView struct {
	Version      int64             `json:"version"`
	Status       string            `json:"status"`
	Fields       map[string]string `json:"fields"`
	EditedFields []string          `json:"edited_fields"`
	PacketBytes  int               `json:"packet_bytes"`
	PacketPages  int               `json:"packet_pages"`
	AssembledAt  *time.Time        `json:"assembled_at"`
	AssembledBy  string            `json:"assembled_by,omitempty"`
	UpdatedAt    time.Time         `json:"updated_at"`
	UpdatedBy    string            `json:"updated_by"`
	SentActionID string            `json:"sent_action_id,omitempty"`
	FileIDs      map[string]string `json:"file_ids,omitempty"`
	StagedAt     *time.Time        `json:"staged_at"`
	SubmittedAt  *time.Time        `json:"submitted_at"`
	TotalChars   int               `json:"total_chars"`
	// KeptEdits lists, after an assembly, the analyst's edits it kept.
	KeptEdits []string `json:"kept_edits,omitempty"`
}

// EvidenceDocument is GET /cases/{id}/evidence.
type EvidenceDocument struct {
	CaseID            string         `json:"case_id"`
	DisputeID         string         `json:"dispute_id"`
	ChargeID          string         `json:"charge_id"`
	CustomerID        string         `json:"customer_id"`
	Amount            int64          `json:"amount"`
	Currency          string         `json:"currency"`
	Status            string         `json:"dispute_status"`
	Deadline          Deadline       `json:"deadline"`
	Reason            string         `json:"reason"`
	ChecklistReason   string         `json:"checklist_reason"`
	Network           string         `json:"network"`
	NetworkReasonCode string         `json:"network_reason_code"`
	Meaning           string         `json:"network_reason_meaning"`
	Checklist         ChecklistView  `json:"checklist"`
	CE3               *CE3View       `json:"ce3"`
	Recommendation    Recommendation `json:"recommendation"`
	Draft             *DraftView     `json:"draft"`
	Limits            string         `json:"limits"`
}

// Evidence returns the workbench document of a dispute case. Errors:
// ENOTFOUND (no case), EUNPROCESSABLE not_a_dispute_case /
// dispute_not_linked, ENOTFOUND dispute_not_mirrored.
func (w *Workbench) Evidence(ctx context.Context, caseID string) (EvidenceDocument, error) {
	ev, err := w.load(ctx, caseID)
	if err != nil {
		return EvidenceDocument{}, err
	}
	row, found, err := loadDraft(ctx, w.db.Gorm, caseID)
	if err != nil {
		return EvidenceDocument{}, err
	}
	var draft *draftRow
	if found {
		draft = &row
	}
	return w.document(ctx, ev, draft, assemble(ev))
}

// document builds the workbench document; asm is what assembly would fill
// now (to tell can_assemble from missing).
func (w *Workbench) document(ctx context.Context, ev *caseEvidence, draft *draftRow, asm assembly) (EvidenceDocument, error) {
	d := ev.Dispute
	brand := NormalizeBrand(firstNonEmpty(d.CardBrand, ev.Charge.CardBrand))
	doc := EvidenceDocument{
		CaseID: ev.Case.ID, DisputeID: d.ID, ChargeID: d.ChargeID, CustomerID: ev.Customer.ID,
		Amount: d.Amount, Currency: d.Currency, Status: d.Status,
		Deadline: deadlineOf(d, ev.Now), Reason: d.Reason, ChecklistReason: ev.Checklist.Reason,
		Network: brand, NetworkReasonCode: d.NetworkReasonCode,
		Meaning: CodeMeaning(brand, d.NetworkReasonCode, d.Reason),
		Limits:  describeLimits(brand),
	}
	var have map[string]string
	if draft != nil {
		have = draft.fields()
		doc.Draft = draftView(*draft)
	}
	doc.Checklist = checklistView(ev.Checklist, have, draft != nil && len(draft.Packet) > 0, asm)
	if ev.Checklist.CE3 {
		v := ce3View(ev)
		doc.CE3 = &v
	}
	rec, err := w.recommend(ctx, ev, doc.Checklist)
	if err != nil {
		return EvidenceDocument{}, err
	}
	doc.Recommendation = rec
	return doc, nil
}

func draftView(r draftRow) *DraftView {
	fields := r.fields()
	total := 0
	for _, v := range fields {
		total += len([]rune(v))
	}
	v := &DraftView{Version: r.Version, Status: r.Status, Fields: fields, EditedFields: r.edited(), PacketBytes: len(r.Packet), PacketPages: r.PacketPages,
		AssembledAt: r.AssembledAt, AssembledBy: deref(r.AssembledBy), UpdatedAt: r.UpdatedAt, UpdatedBy: r.UpdatedBy,
		SentActionID: deref(r.SentActionID), FileIDs: r.fileIDs(), StagedAt: r.StagedAt, SubmittedAt: r.SubmittedAt, TotalChars: total}
	return v
}

func deadlineOf(d billing.Dispute, now time.Time) Deadline {
	info := d.Deadline(now)
	out := Deadline{Summary: info.Summary, Urgency: UrgencyNone}
	if info.DueBy.IsZero() {
		return out
	}
	due := info.DueBy
	out.DueBy = &due
	out.SecondsLeft = int64(info.Left / time.Second)
	if info.Left < 0 {
		out.Left = "overdue by " + shortDuration(-info.Left)
	} else {
		out.Left = shortDuration(info.Left)
	}
	switch info.Urgency {
	case billing.UrgencyPastDue:
		out.Urgency = UrgencyOverdue
	case billing.UrgencyCritical:
		out.Urgency = UrgencyCritical
	case billing.UrgencyHigh:
		out.Urgency = UrgencyHigh
	case billing.UrgencyNormal, billing.UrgencyLow:
		out.Urgency = UrgencyNormal
	}
	return out
}

func shortDuration(d time.Duration) string {
	days := int64(d / (24 * time.Hour))
	hours := int64(d%(24*time.Hour)) / int64(time.Hour)
	mins := int64(d%time.Hour) / int64(time.Minute)
	switch {
	case days > 0:
		return fmt.Sprintf("%dd %dh", days, hours)
	case hours > 0:
		return fmt.Sprintf("%dh %dm", hours, mins)
	}
	return fmt.Sprintf("%dm", mins)
}

// itemSource says where each field's evidence comes from.
var itemSource = map[EvidenceField]string{
	FieldCustomerName:                 "mirror: the Stripe customer",
	FieldCustomerEmailAddress:         "mirror: the Stripe customer",
	FieldCustomerPurchaseIP:           "facts: the sign-in or session nearest the purchase",
	FieldBillingAddress:               "not mirrored: enter it by hand",
	FieldAccessActivityLog:            "facts: signup, login and usage, in time order",
	FieldCancellationPolicy:           "facts: consent + the policy document (rebuttal packet, consent exhibit)",
	FieldCancellationPolicyDisclosure: "facts: the consent to the cancellation policy or terms",
	FieldCancellationRebuttal:         "mirror (subscription), facts (consent, notices, usage)",
	FieldCustomerCommunication:        "facts: communications and notices (rebuttal packet)",
	FieldRefundPolicy:                 "facts: consent to the refund policy + the policy document (rebuttal packet)",
	FieldRefundPolicyDisclosure:       "facts: the consent to the refund policy",
	FieldRefundRefusalExplanation:     "mirror: refunds; facts: usage and requests",
	FieldDuplicateChargeID:            "mirror: another charge of the same amount",
	FieldDuplicateChargeExplanation:   "mirror: charges and invoices",
	FieldDuplicateChargeDocumentation: "mirror: payment history (rebuttal packet)",
	FieldProductDescription:           "mirror: the subscription",
	FieldServiceDate:                  "mirror: the charge and the subscription's interval",
	FieldServiceDocumentation:         "facts: delivery records (rebuttal packet)",
	FieldReceipt:                      "mirror: payment history (rebuttal packet)",
	FieldUncategorizedText:            "the rebuttal letter",
	FieldUncategorizedFile:            "the rebuttal packet (PDF)",
}

// fileExhibit maps file fields to the packet exhibit that carries them.
var fileExhibit = map[EvidenceField]string{
	FieldCancellationPolicy:           "consent",
	FieldRefundPolicy:                 "consent",
	FieldCustomerCommunication:        "communications",
	FieldServiceDocumentation:         "delivery",
	FieldReceipt:                      "history",
	FieldDuplicateChargeDocumentation: "history",
}

func checklistView(cl Checklist, have map[string]string, hasPacket bool, asm assembly) ChecklistView {
	v := ChecklistView{Basis: cl.Basis, Contestable: cl.Contestable, RebuttalField: cl.RebuttalField, Notes: cl.Notes, Items: []ChecklistItem{}}
	exhibits := map[string]bool{}
	for _, ex := range asm.Exhibits {
		exhibits[ex.Key] = true
	}
	var score, total float64
	for _, it := range cl.Items {
		ci := ChecklistItem{Field: it.Field, Need: it.Need, Proves: it.Proves, Source: itemSource[it.Field], Status: ItemMissing}
		if ci.Source == "" {
			ci.Source = "not assembled: enter it by hand"
		}
		switch {
		case it.Field == FieldUncategorizedFile:
			if hasPacket {
				ci.Status = ItemHave
			} else {
				ci.Status = ItemCanAssemble
			}
		case it.Field.Kind() == FieldKindFile:
			if key, ok := fileExhibit[it.Field]; ok && exhibits[key] {
				if hasPacket {
					ci.Status = ItemHave
				} else {
					ci.Status = ItemCanAssemble
				}
			}
		case strings.TrimSpace(have[string(it.Field)]) != "":
			ci.Status = ItemHave
		case strings.TrimSpace(asm.Fields[string(it.Field)]) != "":
			ci.Status = ItemCanAssemble
		}
		weight := 1.0
		if it.Need == NeedRequired {
			weight = 2
		}
		total += weight
		switch ci.Status {
		case ItemHave:
			score += weight
		case ItemCanAssemble:
			score += 0.75 * weight
		}
		v.Items = append(v.Items, ci)
	}
	if total > 0 {
		v.Strength = math.Round(score/total*100) / 100
	}
	return v
}

// recommend weighs fighting against accepting.
func (w *Workbench) recommend(ctx context.Context, ev *caseEvidence, cl ChecklistView) (Recommendation, error) {
	d := ev.Dispute
	brand := NormalizeBrand(firstNonEmpty(d.CardBrand, ev.Charge.CardBrand))
	won, lost, err := w.mirror.DisputeOutcomes(ctx, normalizeReason(d.Reason), brand)
	if err != nil {
		return Recommendation{}, err
	}
	p := w.policy
	rate := p.PriorWinRate
	if decided := float64(won + lost); decided+p.PriorWeight > 0 {
		rate = (float64(won) + p.PriorWinRate*p.PriorWeight) / (decided + p.PriorWeight)
	}
	chance := math.Min(rate*(0.5+cl.Strength), 0.95)
	var ltv int64
	for _, c := range ev.Charges {
		if c.Status == "succeeded" && c.Currency == d.Currency {
			ltv += c.Amount - c.AmountRefunded
		}
	}
	a, fee, counter := float64(d.Amount), float64(p.Fees.DisputeFee), float64(p.Fees.CounterFee)
	evFight := chance*(-fee) + (1-chance)*(-(a + fee + counter))
	evAccept := -(a + fee)
	r := Recommendation{Amount: d.Amount, Currency: d.Currency, Fees: p.Fees, Won: won, Lost: lost,
		WinRate: math.Round(rate*1000) / 1000, WinChance: math.Round(chance*1000) / 1000, ChecklistStrength: cl.Strength,
		LifetimeValue: ltv, ExpectedFight: int64(math.Round(evFight)), ExpectedAccept: int64(math.Round(evAccept))}
	hist := fmt.Sprintf("%d won of %d decided %s %s disputes", won, won+lost, orUnknown(brand), orUnknown(d.Reason))
	_, canceledBefore := ev.cancellationBefore()
	switch {
	case !cl.Contestable:
		r.Action = "accept"
		r.Why = "Evidence cannot win this dispute (" + strings.Join(cl.Notes, " ") + ")"
	case canceledBefore && ev.Checklist.Reason == ReasonSubscriptionCanceled:
		r.Action = "accept"
		r.Why = "The subscription was canceled before the charge, so the cardholder's claim is valid: accept rather than pay the counter fee on a fight that cannot be won."
	case r.ExpectedFight > r.ExpectedAccept:
		r.Action = "fight"
		r.Why = fmt.Sprintf("Fighting is worth %s more than accepting on average: a %.0f%% chance (%s, checklist strength %.2f) of keeping %s outweighs the %s counter fee.",
			money(r.ExpectedFight-r.ExpectedAccept, d.Currency), chance*100, hist, cl.Strength, money(d.Amount, d.Currency), money(p.Fees.CounterFee, d.Currency))
	default:
		r.Action = "accept"
		r.Why = fmt.Sprintf("Accepting costs %s less on average: a %.0f%% chance (%s, checklist strength %.2f) does not cover the %s counter fee on %s.",
			money(r.ExpectedAccept-r.ExpectedFight, d.Currency), chance*100, hist, cl.Strength, money(p.Fees.CounterFee, d.Currency), money(d.Amount, d.Currency))
	}
	if ltv > 0 {
		r.Why += fmt.Sprintf(" The customer has paid %s in all.", money(ltv, d.Currency))
	}
	return r, nil
}

// ce3View decides CE 3.0 from our own history: the customer's charges on
// the same card, with the identifiers the facts recorded around each.
func ce3View(ev *caseEvidence) CE3View {
	disputed := ev.payment(ev.Charge, true)
	var priors []Payment
	for _, c := range ev.Charges {
		if c.ID == ev.Charge.ID || c.CardFingerprint == "" || c.CardFingerprint != ev.Charge.CardFingerprint || !c.Created.Before(ev.chargeTime()) {
			continue
		}
		priors = append(priors, ev.payment(c, false))
	}
	res := CE3Eligible(disputed, priors)
	v := CE3View{Applies: true, Eligible: res.Eligible, Summary: res.Summary, Selected: res.Selected, Priors: res.Priors,
		Disputed: CE3Identity{Charge: disputed.ChargeID, PurchaseIP: disputed.PurchaseIP, DeviceID: disputed.DeviceID, DeviceFingerprint: disputed.DeviceFingerprint, AccountID: disputed.AccountID}}
	if v.Selected == nil {
		v.Selected = []string{}
	}
	if v.Priors == nil {
		v.Priors = []CE3Prior{}
	}
	if disputed.PurchaseIP == "" {
		v.Missing = append(v.Missing, "no IP recorded around the disputed purchase: send login or usage facts with the IP")
	}
	if disputed.DeviceID == "" && disputed.DeviceFingerprint == "" {
		v.Missing = append(v.Missing, "no device id or fingerprint recorded around the disputed purchase")
	}
	if disputed.AccountID == "" {
		v.Missing = append(v.Missing, "no account id recorded around the disputed purchase")
	}
	if len(priors) < CE3MinPriors {
		v.Missing = append(v.Missing, fmt.Sprintf("%d prior charges on the same card in the mirror; Visa needs %d, 120–365 days old", len(priors), CE3MinPriors))
	}
	if v.Missing == nil {
		v.Missing = []string{}
	}
	return v
}

// payment is a charge as CE 3.0 sees it, with the identifiers of the
// customer's activity nearest it (within 30 days before, a day after).
func (ev *caseEvidence) payment(c billing.Charge, disputed bool) Payment {
	p := Payment{ChargeID: c.ID, Created: c.Created, CardBrand: c.CardBrand, CardFingerprint: c.CardFingerprint,
		Paid: c.Paid && c.Status == "succeeded", Disputed: c.Disputed, FraudReported: ev.Fraud[c.ID]}
	if disputed {
		p.CardBrand = firstNonEmpty(ev.Dispute.CardBrand, c.CardBrand)
		p.NetworkReasonCode = ev.Dispute.NetworkReasonCode
		p.Created = ev.chargeTime()
		if p.ChargeID == "" {
			p.ChargeID = ev.Dispute.ChargeID
		}
	}
	if ip, f := ipNear(ev.Facts, p.Created, ce3Within); f != nil {
		p.PurchaseIP = ip
		p.DeviceID = f.DeviceID
		p.DeviceFingerprint = f.DeviceFingerprint
		p.AccountID = f.AccountID
	}
	return p
}

// --- loading ---------------------------------------------------------------

// load reads everything the workbench knows about a dispute case.
func (w *Workbench) load(ctx context.Context, caseID string) (*caseEvidence, error) {
	c, err := w.cases.Get(ctx, caseID)
	if err != nil {
		return nil, err
	}
	if c.Kind != cases.KindDispute {
		return nil, errs.Coded(errs.EUNPROCESSABLE, CodeNotDisputeCase, "case %s is a %s case; the evidence workbench works on dispute cases", c.ID, c.Kind)
	}
	disputeID := deref(c.Links.Dispute)
	if disputeID == "" {
		return nil, errs.Coded(errs.EUNPROCESSABLE, CodeNoDisputeLinked, "dispute case %s is not linked to a dispute", c.ID)
	}
	d, err := w.mirror.Dispute(ctx, disputeID)
	if err != nil {
		if errs.Is(err, errs.ENOTFOUND) {
			return nil, errs.Coded(errs.ENOTFOUND, CodeNotMirrored, "dispute %s of case %s is not in the mirror", disputeID, c.ID)
		}
		return nil, err
	}
	ev := &caseEvidence{Case: c, Dispute: d, Now: w.clock.Now(), Fraud: map[string]bool{}, Policies: map[PolicyRef]PolicyDocument{}}
	if d.ChargeID != "" {
		ch, err := w.mirror.Charge(ctx, d.ChargeID)
		if err != nil && !errs.Is(err, errs.ENOTFOUND) {
			return nil, err
		}
		ev.Charge = ch
	}
	customerID := firstNonEmpty(d.CustomerID, ev.Charge.CustomerID, deref(c.Links.Customer))
	brand := firstNonEmpty(d.CardBrand, ev.Charge.CardBrand)
	ev.Checklist = Requirements(brand, d.NetworkReasonCode, d.Reason)
	if customerID == "" {
		return ev, nil
	}
	cu, err := w.mirror.Customer(ctx, customerID)
	if err != nil && !errs.Is(err, errs.ENOTFOUND) {
		return nil, err
	}
	if cu.ID == "" {
		cu.ID = customerID
	}
	ev.Customer = cu
	if ev.Subs, err = w.mirror.SubscriptionsByCustomer(ctx, customerID); err != nil {
		return nil, err
	}
	for _, s := range ev.Subs {
		invs, err := w.mirror.InvoicesBySubscription(ctx, s.ID)
		if err != nil {
			return nil, err
		}
		ev.Invoices = append(ev.Invoices, invs...)
	}
	if ev.Charges, err = w.mirror.ChargesByCustomer(ctx, customerID); err != nil {
		return nil, err
	}
	for _, ch := range ev.Charges {
		if ch.AmountRefunded > 0 || ch.Refunded || ch.ID == d.ChargeID {
			rs, err := w.mirror.RefundsByCharge(ctx, ch.ID)
			if err != nil {
				return nil, err
			}
			ev.Refunds = append(ev.Refunds, rs...)
		}
		if ev.Checklist.CE3 && ch.CardFingerprint != "" && ch.CardFingerprint == ev.Charge.CardFingerprint {
			ws, err := w.mirror.FraudWarningsByCharge(ctx, ch.ID)
			if err != nil {
				return nil, err
			}
			ev.Fraud[ch.ID] = len(ws) > 0
		}
	}
	// The customer's billing timeline (the provider's events, latest first):
	// the billing story as Stripe recorded it.
	tl, err := w.mirror.Timeline(ctx, customerID, httpx.PageRequest{Limit: maxBillingEvents})
	if err != nil {
		return nil, err
	}
	ev.Billing = tl.Data
	slices.Reverse(ev.Billing)
	facts, err := w.customerFacts(ctx, customerID, ev)
	if err != nil {
		return nil, err
	}
	ev.Facts = facts
	for _, f := range facts {
		if f.Kind != FactConsent || f.Policy == nil {
			continue
		}
		if _, done := ev.Policies[*f.Policy]; done {
			continue
		}
		doc, err := w.facts.PolicyDocument(ctx, f.Policy.Key, f.Policy.Version)
		switch {
		case err == nil:
			ev.Policies[*f.Policy] = doc
		case errs.Is(err, errs.ENOTFOUND):
			ev.Policies[*f.Policy] = PolicyDocument{Key: f.Policy.Key, Version: f.Policy.Version}
		default:
			return nil, fmt.Errorf("read policy %s version %s: %w", f.Policy.Key, f.Policy.Version, err)
		}
	}
	return ev, nil
}

// Fact windows: what of a customer's activity (sign-ups, logins, usage)
// the workbench reads. Consents, notices, communications and deliveries are
// read whole; activity, which can run to tens of thousands of rows, only
// around the disputed charge and (CE 3.0) around each prior charge.
const (
	activityAfterMax = 5000 // activity rows read after the disputed charge
)

var activityKinds = []FactKind{FactSignup, FactLogin, FactUsage}

// customerFacts reads the facts assembly uses, only customerID's, in time
// order (then id), without duplicates.
func (w *Workbench) customerFacts(ctx context.Context, customerID string, ev *caseEvidence) ([]Fact, error) {
	at := ev.chargeTime()
	before, after := at.Add(-purchaseIPWithin), at
	queries := []FactQuery{
		{Kinds: []FactKind{FactConsent, FactNotice, FactCommunication, FactDelivery}},
		{Kinds: []FactKind{FactSignup}, Limit: 1},
		{Kinds: activityKinds, From: &before, To: &after},
		{Kinds: activityKinds, From: &after, Limit: activityAfterMax},
	}
	if ev.Checklist.CE3 {
		for _, c := range ev.Charges {
			if c.ID == ev.Charge.ID || c.CardFingerprint == "" || c.CardFingerprint != ev.Charge.CardFingerprint || !c.Created.Before(before) {
				continue
			}
			from, to := c.Created.Add(-ce3Within), c.Created.Add(24*time.Hour)
			queries = append(queries, FactQuery{Kinds: activityKinds, From: &from, To: &to})
		}
	}
	seen := map[string]bool{}
	var out []Fact
	for _, q := range queries {
		fs, err := w.facts.Facts(ctx, customerID, q)
		if err != nil {
			return nil, fmt.Errorf("read the facts of customer %s: %w", customerID, err)
		}
		for _, f := range fs {
			// Only this customer's facts, whatever the reader did.
			if (f.CustomerID != "" && f.CustomerID != customerID) || seen[f.ID] {
				continue
			}
			seen[f.ID] = true
			out = append(out, f)
		}
	}
	slices.SortStableFunc(out, func(a, b Fact) int {
		if c := a.OccurredAt.Compare(b.OccurredAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// --- assembly and edits -------------------------------------------------------

// AssembleOptions tune an assembly.
type AssembleOptions struct {
	// Overwrite discards the analyst's edits; by default an assembly keeps
	// every field the analyst edited (and says which in KeptEdits).
	Overwrite bool
}

// Assemble builds (or rebuilds) the case's evidence draft: the text fields
// and the rebuttal packet, from the mirror, the case timeline and the
// customer's facts. Fields the analyst edited are kept unless
// opts.Overwrite. The version moves on; a staged draft becomes a draft
// again. Errors: those of [Workbench.Evidence]; ECONFLICT
// evidence_already_submitted once submitted, evidence_draft_changed on a
// concurrent change.
func (w *Workbench) Assemble(ctx context.Context, caseID, actor string, opts AssembleOptions) (EvidenceDocument, error) {
	read, found, err := loadDraft(ctx, w.db.Gorm, caseID)
	if err != nil {
		return EvidenceDocument{}, err
	} else if found && read.Status == DraftStatusSubmitted {
		return EvidenceDocument{}, submittedError(caseID)
	}
	ev, err := w.load(ctx, caseID)
	if err != nil {
		return EvidenceDocument{}, err
	}
	asm := assemble(ev)
	if !opts.Overwrite && found {
		// The analyst's own letter, kept, is page 1 of the packet.
		asm.Letter.Edited = keptLetter(read)
	}
	now := w.clock.Now().UTC()
	packet, pages, err := packetWithin(asm, now, MaxPagesFor(firstNonEmpty(ev.Dispute.CardBrand, ev.Charge.CardBrand)))
	if err != nil {
		return EvidenceDocument{}, err
	}
	var out draftRow
	var kept []string
	err = w.db.Transact(ctx, func(tx *gorm.DB) error {
		if _, err := w.cases.GetInTx(ctx, tx, caseID); err != nil { // serialises with other writers of the case
			return err
		}
		prev, found, err := loadDraft(ctx, tx, caseID)
		if err != nil {
			return err
		}
		fields := asm.Fields
		edited := []string{}
		next := draftRow{CaseID: caseID, DisputeID: ev.Dispute.ID, CardBrand: NormalizeBrand(firstNonEmpty(ev.Dispute.CardBrand, ev.Charge.CardBrand)),
			Version: 1, Status: DraftStatusDraft, Packet: packet, PacketPages: pages, AssembledAt: &now, AssembledBy: &actor,
			UpdatedAt: now, UpdatedBy: actor}
		var prevp *draftRow
		if found {
			prevp = &prev
			if prev.Status == DraftStatusSubmitted {
				return submittedError(caseID)
			}
			next.Version = prev.Version + 1
			if !opts.Overwrite {
				if keptLetter(prev) != asm.Letter.Edited {
					return draftChanged(caseID) // the letter was edited while the packet was rendered
				}
				old := prev.fields()
				for _, f := range prev.edited() {
					kept = append(kept, f)
					edited = append(edited, f)
					if v := old[f]; v != "" {
						fields[f] = v
					} else {
						delete(fields, f)
					}
				}
			}
		}
		next.Fields, next.EditedFields = mustJSON(fields), mustJSON(edited)
		if err := saveDraft(ctx, tx, prevp, next); err != nil {
			return err
		}
		summary := fmt.Sprintf("Evidence assembled (version %d: %d fields, rebuttal packet of %d pages)", next.Version, len(fields), pages)
		if len(kept) > 0 {
			summary += fmt.Sprintf("; kept the analyst's edits to %s", strings.Join(kept, ", "))
		}
		if err := w.cases.Record(ctx, tx, caseID, actor, EntryEvidenceAssembled, summary, ""); err != nil {
			return err
		}
		if err := w.audit.Record(ctx, tx, audit.Entry{Action: "evidence.assemble", CaseID: caseID, ObjectType: "dispute", ObjectID: ev.Dispute.ID,
			Before: auditDraft(prevp), After: auditDraft(&next), Detail: summary}); err != nil {
			return err
		}
		out = next
		return nil
	})
	if err != nil {
		return EvidenceDocument{}, err
	}
	doc, err := w.document(ctx, ev, &out, asm)
	if err != nil {
		return EvidenceDocument{}, err
	}
	doc.Draft.KeptEdits = kept
	return doc, nil
}

// keptLetter is the rebuttal letter as the analyst edited it
// (uncategorized_text), or "" when they did not: an assembly that keeps
// their edits renders it as the packet's first page, so the letter sent as
// text and the letter in the packet agree.
func keptLetter(r draftRow) string {
	if !slices.Contains(r.edited(), string(FieldUncategorizedText)) {
		return ""
	}
	return r.fields()[string(FieldUncategorizedText)]
}

// auditDraft is what the audit log keeps of a draft: version, status and
// the field names and sizes (the text itself is in the draft).
func auditDraft(r *draftRow) json.RawMessage {
	if r == nil {
		return nil
	}
	sizes := map[string]int{}
	for k, v := range r.fields() {
		sizes[k] = len([]rune(v))
	}
	return audit.Marshal(map[string]any{"version": r.Version, "status": r.Status, "field_chars": sizes, "edited_fields": r.edited(), "packet_bytes": len(r.Packet), "packet_pages": r.PacketPages})
}

// Patch sets text fields of the case's draft as the analyst wrote them
// (card numbers masked); an empty value clears a field. Each field is
// checked (unknown, file field, too long, links) and so are all fields
// together; each refusal is EUNPROCESSABLE naming the limit. The version
// moves on and the fields count as edited (an assembly keeps them); a staged
// draft becomes a draft again. ENOTFOUND no_evidence_draft before the first
// assembly; ECONFLICT evidence_already_submitted once submitted.
func (w *Workbench) Patch(ctx context.Context, caseID string, fields map[string]string, actor string) (EvidenceDocument, error) {
	return w.patch(ctx, caseID, fields, actor, nil)
}

// PatchVersion is [Workbench.Patch] for an analyst who read the draft at
// version: when the draft has moved on since (another edit, an assembly,
// a staging), nothing is written and the answer is ECONFLICT
// evidence_draft_changed (details: version, current_version), so a stale
// form never overwrites newer text.
func (w *Workbench) PatchVersion(ctx context.Context, caseID string, version int64, fields map[string]string, actor string) (EvidenceDocument, error) {
	return w.patch(ctx, caseID, fields, actor, &version)
}

func (w *Workbench) patch(ctx context.Context, caseID string, fields map[string]string, actor string, version *int64) (EvidenceDocument, error) {
	if len(fields) == 0 {
		return EvidenceDocument{}, errs.Coded(errs.EUNPROCESSABLE, CodeFieldsRequired, "give the fields to change: {\"fields\": {\"<Stripe evidence field>\": \"…\"}}")
	}
	masked := make(map[string]string, len(fields))
	for k, v := range fields {
		masked[k] = pan.Mask(v)
		if err := CheckTextField(k, masked[k]); err != nil {
			return EvidenceDocument{}, err
		}
	}
	c, err := w.cases.Get(ctx, caseID)
	if err != nil {
		return EvidenceDocument{}, err
	}
	if c.Kind != cases.KindDispute {
		return EvidenceDocument{}, errs.Coded(errs.EUNPROCESSABLE, CodeNotDisputeCase, "case %s is a %s case; the evidence workbench works on dispute cases", c.ID, c.Kind)
	}
	err = w.db.Transact(ctx, func(tx *gorm.DB) error {
		if _, err := w.cases.GetInTx(ctx, tx, caseID); err != nil {
			return err
		}
		prev, found, err := loadDraft(ctx, tx, caseID)
		if err != nil {
			return err
		}
		if !found {
			return errs.Coded(errs.ENOTFOUND, CodeNoDraft, "case %s has no evidence draft yet; assemble one first (POST /cases/%s/evidence/assemble)", caseID, caseID)
		}
		if prev.Status == DraftStatusSubmitted {
			return submittedError(caseID)
		}
		if version != nil && *version != prev.Version {
			return errs.Coded(errs.ECONFLICT, CodeDraftChanged, "the evidence draft of case %s is at version %d, not %d: it changed after it was read; read it again and redo the edit", caseID, prev.Version, *version).
				WithDetails(map[string]any{"version": *version, "current_version": prev.Version})
		}
		next := prev
		cur := prev.fields()
		edited := prev.edited()
		names := make([]string, 0, len(masked))
		for k, v := range masked {
			if v == "" {
				delete(cur, k)
			} else {
				cur[k] = v
			}
			if !slices.Contains(edited, k) {
				edited = append(edited, k)
			}
			names = append(names, k)
		}
		slices.Sort(names)
		slices.Sort(edited)
		if err := CheckTextFields(cur); err != nil {
			return err
		}
		now := w.clock.Now().UTC()
		next.Fields, next.EditedFields = mustJSON(cur), mustJSON(edited)
		next.Version = prev.Version + 1
		next.Status = DraftStatusDraft
		next.UpdatedAt, next.UpdatedBy = now, actor
		if err := saveDraft(ctx, tx, &prev, next); err != nil {
			return err
		}
		summary := fmt.Sprintf("Evidence edited (version %d): %s", next.Version, strings.Join(names, ", "))
		if err := w.cases.Record(ctx, tx, caseID, actor, EntryEvidenceEdited, summary, ""); err != nil {
			return err
		}
		if err := w.audit.Record(ctx, tx, audit.Entry{Action: "evidence.edit", CaseID: caseID, ObjectType: "dispute", ObjectID: prev.DisputeID,
			Before: auditDraft(&prev), After: auditDraft(&next), Detail: summary}); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return EvidenceDocument{}, err
	}
	return w.Evidence(ctx, caseID)
}

// Packet returns the rebuttal packet PDF of the case's draft. ENOTFOUND
// no_evidence_draft / no_evidence_packet.
func (w *Workbench) Packet(ctx context.Context, caseID string) ([]byte, error) {
	// The case first: a download is a read of the case, and out of the
	// caller's scope it answers like a missing case (README "Scoping").
	if _, err := w.cases.Get(ctx, caseID); err != nil {
		return nil, err
	}
	r, found, err := loadDraft(ctx, w.db.Gorm, caseID)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, errs.Coded(errs.ENOTFOUND, CodeNoDraft, "case %s has no evidence draft yet; assemble one first", caseID)
	}
	if len(r.Packet) == 0 {
		return nil, errs.Coded(errs.ENOTFOUND, CodeNoPacket, "the evidence draft of case %s has no rebuttal packet; assemble it", caseID)
	}
	return r.Packet, nil
}

// PacketName is the file name of a dispute's rebuttal packet.
func PacketName(disputeID string) string { return "rebuttal-" + disputeID + ".pdf" }

// --- actions.Evidence ----------------------------------------------------------

// Package returns the case's evidence as it would leave, inside tx: the
// text fields and the rebuttal packet as uncategorized_file, checked
// against every limit ([CheckPackage]: EUNPROCESSABLE naming the limit).
// ENOTFOUND when the case has no draft.
func (w *Workbench) Package(ctx context.Context, tx *gorm.DB, caseID string) (Package, error) {
	r, found, err := loadDraft(ctx, tx, caseID)
	if err != nil {
		return Package{}, err
	}
	if !found {
		return Package{}, errs.Coded(errs.ENOTFOUND, CodeNoDraft, "case %s has no evidence draft", caseID)
	}
	p := Package{CaseID: caseID, DisputeID: r.DisputeID, Brand: r.CardBrand, Version: r.Version, Status: r.Status, Fields: plainFields(r.fields())}
	if len(r.Packet) > 0 {
		p.Files = []File{{Field: FieldUncategorizedFile, Name: PacketName(r.DisputeID), MIMEType: "application/pdf", Content: r.Packet}}
	}
	if err := CheckPackage(p); err != nil {
		return Package{}, err
	}
	return p, nil
}

// Sent records, inside tx, that version of the case's draft went to the
// provider: staged (submitted false) or submitted, by action actionID, with
// the provider's file ids. Idempotent for the same action; ECONFLICT
// evidence_version_mismatch when the draft is at another version,
// evidence_sent_by_other_action when another action already submitted it.
func (w *Workbench) Sent(ctx context.Context, tx *gorm.DB, caseID string, version int64, submitted bool, actionID string, fileIDs map[string]string) error {
	r, found, err := loadDraft(ctx, tx, caseID)
	if err != nil {
		return err
	}
	if !found {
		return errs.Coded(errs.ENOTFOUND, CodeNoDraft, "case %s has no evidence draft", caseID)
	}
	status := DraftStatusStaged
	if submitted {
		status = DraftStatusSubmitted
	}
	if deref(r.SentActionID) == actionID && r.Version == version && (r.Status == status || r.Status == DraftStatusSubmitted) {
		return nil // the same action, again
	}
	if r.Status == DraftStatusSubmitted {
		return errs.Coded(errs.ECONFLICT, CodeAlreadySent, "the evidence of case %s was already submitted by action %s", caseID, deref(r.SentActionID))
	}
	if r.Version != version {
		return errs.Coded(errs.ECONFLICT, CodeVersionMismatch, "action %s sent version %d of the evidence of case %s, which is now at version %d", actionID, version, caseID, r.Version)
	}
	now := w.clock.Now().UTC()
	next := r
	next.Status = status
	next.SentActionID = &actionID
	ids := mustJSON(fileIDs)
	next.FileIDs = &ids
	if submitted {
		next.SubmittedAt = &now
	} else {
		next.StagedAt = &now
	}
	return saveDraft(ctx, tx, &r, next)
}
