package disputes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/httpx"
	"github.com/recourse-hq/recourse/internal/pan"
)

// Limits on evidence facts. They are part of the facts API contract
// (docs/disputes.md).
const (
	// MaxFactsPerBatch is the most facts one Put (one request) carries.
	MaxFactsPerBatch = 1000
	// MaxFactIDLen bounds a fact's id and the customer id, in bytes.
	MaxFactIDLen = 255
	// MaxFactTextLen bounds every other text field of a fact, in bytes.
	MaxFactTextLen = 1024
	// MaxFactDataBytes bounds a fact's data object (compact JSON), in bytes.
	MaxFactDataBytes = 16 << 10
	// MaxFactFuture is how far past now a fact may claim to have happened
	// (clock skew between the merchant's servers and Recourse).
	MaxFactFuture = 24 * time.Hour
	// MaxPolicyBodyBytes bounds a policy document's body.
	MaxPolicyBodyBytes = 512 << 10
)

// factsEpoch is the earliest occurred_at accepted: anything earlier is a
// zero value or a unit mistake (seconds read as milliseconds), not a fact.
var factsEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// insertChunk is how many rows one INSERT statement carries: 15 columns ×
// 500 rows stays far below both databases' bind-parameter limits.
const insertChunk = 500

// FactInput is one fact as the merchant's product sends it (the wire shape
// of POST /customers/{id}/facts and of a JSONL import line). OccurredAt is
// RFC 3339 text so a bad time is refused with its own message. Customer is
// optional: when present it must name the customer the batch is for (a
// JSONL import line carries it).
type FactInput struct {
	ID                string          `json:"id"`
	Customer          string          `json:"customer,omitempty"`
	Kind              FactKind        `json:"kind"`
	OccurredAt        string          `json:"occurred_at"`
	IP                string          `json:"ip,omitempty"`
	DeviceID          string          `json:"device_id,omitempty"`
	DeviceFingerprint string          `json:"device_fingerprint,omitempty"`
	AccountID         string          `json:"account_id,omitempty"`
	UserAgent         string          `json:"user_agent,omitempty"`
	Policy            *PolicyRef      `json:"policy,omitempty"`
	Channel           string          `json:"channel,omitempty"`
	Template          string          `json:"template,omitempty"`
	Data              json.RawMessage `json:"data,omitempty"`
}

// Rejection is one fact of a batch that was refused: its index in the batch
// (0-based) and why, in the API's one error shape.
type Rejection struct {
	Index int               `json:"index"`
	Error httpx.ErrorDetail `json:"error"`
}

// PutResult says what a batch did: facts newly kept, facts already kept
// (same customer and id: a resend, which changes nothing) and facts refused.
type PutResult struct {
	Accepted   int         `json:"accepted"`
	Duplicates int         `json:"duplicates"`
	Rejected   []Rejection `json:"rejected"`
}

// FactStore keeps evidence facts per customer and the policy documents
// consent facts cite. It implements FactReader.
type FactStore struct {
	db    *db.DB
	clock clock.Clock
	audit *audit.Log
}

var _ FactReader = (*FactStore)(nil)

// NewFactStore returns the fact store over d; times come from clk.
func NewFactStore(d *db.DB, clk clock.Clock) *FactStore {
	return &FactStore{db: d, clock: clk}
}

// WithAudit makes the store record every write (one entry per fact batch,
// one per new policy document) in l, in the transaction of the write.
func (s *FactStore) WithAudit(l *audit.Log) *FactStore {
	s.audit = l
	return s
}

type factRow struct {
	CustomerID        string    `gorm:"column:customer_id;primaryKey"`
	ID                string    `gorm:"column:id;primaryKey"`
	Kind              string    `gorm:"column:kind"`
	OccurredAt        time.Time `gorm:"column:occurred_at"`
	IP                string    `gorm:"column:ip"`
	DeviceID          string    `gorm:"column:device_id"`
	DeviceFingerprint string    `gorm:"column:device_fingerprint"`
	AccountID         string    `gorm:"column:account_id"`
	UserAgent         string    `gorm:"column:user_agent"`
	PolicyKey         string    `gorm:"column:policy_key"`
	PolicyVersion     string    `gorm:"column:policy_version"`
	Channel           string    `gorm:"column:channel"`
	Template          string    `gorm:"column:template"`
	Data              string    `gorm:"column:data"`
	ReceivedAt        time.Time `gorm:"column:received_at"`
}

func (factRow) TableName() string { return "dispute_facts" }

func (r factRow) fact() Fact {
	f := Fact{ID: r.ID, CustomerID: r.CustomerID, Kind: FactKind(r.Kind), OccurredAt: r.OccurredAt.UTC(),
		IP: r.IP, DeviceID: r.DeviceID, DeviceFingerprint: r.DeviceFingerprint, AccountID: r.AccountID,
		UserAgent: r.UserAgent, Channel: r.Channel, Template: r.Template, ReceivedAt: r.ReceivedAt.UTC()}
	if r.PolicyKey != "" || r.PolicyVersion != "" {
		f.Policy = &PolicyRef{Key: r.PolicyKey, Version: r.PolicyVersion}
	}
	if r.Data != "" && r.Data != "{}" {
		f.Data = json.RawMessage(r.Data)
	}
	return f
}

// ValidCustomerID refuses (EINVALID) a customer id that is empty, longer than
// MaxFactIDLen or holds control characters. Any other id is accepted: facts
// may arrive before the mirror has seen the customer.
func ValidCustomerID(id string) error {
	if strings.TrimSpace(id) == "" {
		return errs.Coded(errs.EINVALID, "customer_required", "a customer id is required")
	}
	if len(id) > MaxFactIDLen {
		return errs.Coded(errs.EINVALID, "customer_too_long", "a customer id has at most %d characters", MaxFactIDLen)
	}
	if hasControl(id) {
		return errs.Coded(errs.EINVALID, "customer_invalid", "a customer id may not hold control characters")
	}
	return nil
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

// kindTakesPolicy and kindTakesTemplate say which kinds use the two fields
// whose meaning is bound to a kind; every other field may come with any kind.
func kindTakesPolicy(k FactKind) bool { return k == FactConsent }
func kindTakesTemplate(k FactKind) bool {
	return k == FactNotice || k == FactCommunication
}

// ValidFactKind reports whether k is one of FactKinds.
func ValidFactKind(k FactKind) bool {
	for _, x := range FactKinds() {
		if x == k {
			return true
		}
	}
	return false
}

func factKindList() string {
	ks := make([]string, 0, 7)
	for _, k := range FactKinds() {
		ks = append(ks, string(k))
	}
	return strings.Join(ks, ", ")
}

// DecodeFactInput reads one fact of a batch from its JSON, refusing unknown
// fields (EINVALID, code fact_malformed).
func DecodeFactInput(raw json.RawMessage) (FactInput, error) {
	var in FactInput
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return FactInput{}, errs.Coded(errs.EINVALID, "fact_malformed", "the fact is not a JSON object of the fact shape: %s", pan.Mask(err.Error()))
	}
	if dec.More() {
		return FactInput{}, errs.Coded(errs.EINVALID, "fact_malformed", "the fact has data after the JSON object")
	}
	return in, nil
}

// toRow validates in (for customerID, received at now) and returns the row
// to store, every card number in its text (data included) masked. Errors
// are EINVALID with a code naming what is wrong.
func toRow(customerID string, in FactInput, now time.Time) (factRow, error) {
	inv := func(code, format string, args ...any) error {
		return errs.Coded(errs.EINVALID, code, format, args...)
	}
	if in.Customer != "" && in.Customer != customerID {
		return factRow{}, inv("fact_customer_mismatch", "the fact names customer %q but the batch is for %q", pan.Mask(in.Customer), pan.Mask(customerID))
	}
	if strings.TrimSpace(in.ID) == "" {
		return factRow{}, inv("fact_id_required", "id is required: the sender's id for the fact, which makes a resend harmless")
	}
	if len(in.ID) > MaxFactIDLen {
		return factRow{}, inv("fact_id_too_long", "id has at most %d characters", MaxFactIDLen)
	}
	if hasControl(in.ID) {
		return factRow{}, inv("fact_id_invalid", "id may not hold control characters")
	}
	if in.Kind == "" {
		return factRow{}, inv("fact_kind_required", "kind is required: one of %s", factKindList())
	}
	if !ValidFactKind(in.Kind) {
		return factRow{}, inv("fact_kind_unknown", "kind %q is not one of %s", pan.Mask(string(in.Kind)), factKindList())
	}
	if in.OccurredAt == "" {
		return factRow{}, inv("fact_occurred_at_required", "occurred_at is required (RFC 3339, e.g. 2026-03-02T10:00:00Z)")
	}
	at, err := time.Parse(time.RFC3339Nano, in.OccurredAt)
	if err != nil {
		return factRow{}, inv("fact_occurred_at_invalid", "occurred_at %q is not an RFC 3339 time (e.g. 2026-03-02T10:00:00Z)", pan.Mask(in.OccurredAt))
	}
	at = at.UTC().Truncate(time.Microsecond)
	if at.Before(factsEpoch) {
		return factRow{}, inv("fact_occurred_at_out_of_range", "occurred_at %s is before %s", at.Format(time.RFC3339), factsEpoch.Format("2006-01-02"))
	}
	if at.After(now.Add(MaxFactFuture)) {
		return factRow{}, inv("fact_occurred_at_in_future", "occurred_at %s is more than %s in the future", at.Format(time.RFC3339), MaxFactFuture)
	}
	ip := strings.TrimSpace(in.IP)
	if ip != "" {
		addr, err := netip.ParseAddr(ip)
		if err != nil {
			return factRow{}, inv("fact_ip_invalid", "ip %q is not an IPv4 or IPv6 address", pan.Mask(ip))
		}
		ip = addr.String()
	}
	if in.Policy != nil && !kindTakesPolicy(in.Kind) {
		return factRow{}, inv("fact_field_not_for_kind", "policy belongs to consent facts only, not %s", in.Kind)
	}
	if in.Template != "" && !kindTakesTemplate(in.Kind) {
		return factRow{}, inv("fact_field_not_for_kind", "template belongs to notice and communication facts only, not %s", in.Kind)
	}
	r := factRow{CustomerID: customerID, ID: in.ID, Kind: string(in.Kind), OccurredAt: at, IP: ip,
		DeviceID: in.DeviceID, DeviceFingerprint: in.DeviceFingerprint, AccountID: in.AccountID, UserAgent: in.UserAgent,
		Channel: in.Channel, Template: in.Template, ReceivedAt: now}
	if in.Kind == FactConsent {
		if in.Policy == nil || strings.TrimSpace(in.Policy.Key) == "" || strings.TrimSpace(in.Policy.Version) == "" {
			return factRow{}, inv("fact_policy_required", "a consent fact needs policy {\"key\", \"version\"}: the policy document accepted")
		}
		r.PolicyKey, r.PolicyVersion = in.Policy.Key, in.Policy.Version
	}
	for name, v := range map[string]string{"device_id": r.DeviceID, "device_fingerprint": r.DeviceFingerprint, "account_id": r.AccountID,
		"user_agent": r.UserAgent, "channel": r.Channel, "template": r.Template, "policy.key": r.PolicyKey, "policy.version": r.PolicyVersion} {
		if len(v) > MaxFactTextLen {
			return factRow{}, inv("fact_field_too_long", "%s has at most %d characters", name, MaxFactTextLen)
		}
	}
	data, err := normaliseData(in.Data)
	if err != nil {
		return factRow{}, err
	}
	r.Data = data
	// Facts are personal data but never card data: every text value is
	// masked, the id too (a sender might use an order or card reference).
	r.ID = pan.Mask(r.ID)
	r.DeviceID = pan.Mask(r.DeviceID)
	r.DeviceFingerprint = pan.Mask(r.DeviceFingerprint)
	r.AccountID = pan.Mask(r.AccountID)
	r.UserAgent = pan.Mask(r.UserAgent)
	r.Channel = pan.Mask(r.Channel)
	r.Template = pan.Mask(r.Template)
	r.PolicyKey = pan.Mask(r.PolicyKey)
	r.PolicyVersion = pan.Mask(r.PolicyVersion)
	return r, nil
}

// normaliseData checks a fact's data is a JSON object (or absent / null) of
// at most MaxFactDataBytes, masks the card numbers in it — in strings, in
// object keys and in bare numbers whose digits hold a card number (13–19
// digits passing Luhn, which become the masked string) — and returns it
// compact.
func normaliseData(raw json.RawMessage) (string, error) {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return "{}", nil
	}
	if t[0] != '{' {
		return "", errs.Coded(errs.EINVALID, "fact_data_not_object", "data must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(t))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return "", errs.Coded(errs.EINVALID, "fact_data_invalid", "data is not valid JSON")
	}
	doc, _ = maskJSONValue(doc)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return "", errs.Coded(errs.EINVALID, "fact_data_invalid", "data is not valid JSON")
	}
	out := bytes.TrimRight(buf.Bytes(), "\n")
	if len(out) > MaxFactDataBytes {
		return "", errs.Coded(errs.EINVALID, "fact_data_too_large", "data has at most %d bytes of JSON (has %d)", MaxFactDataBytes, len(out))
	}
	return string(out), nil
}

// maskJSONValue masks card numbers in a decoded JSON value (decoded with
// UseNumber); changed reports whether anything was masked.
func maskJSONValue(v any) (any, bool) {
	switch x := v.(type) {
	case string:
		m := pan.Mask(x)
		return m, m != x
	case json.Number:
		// A number whose digits hold a card number becomes the masked
		// string (the digits of a decimal fraction included: text that
		// reads as a card number is treated as one).
		if s := x.String(); pan.Contains(s) {
			return pan.Mask(s), true
		}
		return x, false
	case []any:
		changed := false
		for i := range x {
			var c bool
			x[i], c = maskJSONValue(x[i])
			changed = changed || c
		}
		return x, changed
	case map[string]any:
		changed := false
		out := make(map[string]any, len(x))
		for k, val := range x {
			nv, c := maskJSONValue(val)
			mk := pan.Mask(k)
			out[mk] = nv
			changed = changed || c || mk != k
		}
		return out, changed
	default:
		return v, false
	}
}

// inScope answers ENOTFOUND, like an unknown customer, when customerID is
// outside the scope of ctx's principal (auth.Scope): a scoped user neither
// reads nor writes the facts of customers they cannot see.
func (s *FactStore) inScope(ctx context.Context, customerID string) error {
	ok, err := auth.CustomerVisible(ctx, s.db.Gorm, customerID)
	if err != nil {
		return err
	}
	if !ok {
		return errs.NotFound("no customer %q", customerID)
	}
	return nil
}

// Put validates each fact of a batch (JSON, the FactInput shape) for
// customerID on its own and keeps the good ones in one transaction; bad ones
// are refused one by one with their index. A fact whose (customer, id) is
// already kept — an earlier batch, or earlier in this one — is a duplicate
// and changes nothing, even when its content differs. Card numbers in every
// text value, data included, are masked before anything is written.
//
// Errors: EINVALID for a bad customer id, EUNPROCESSABLE (code
// too_many_facts) for more than MaxFactsPerBatch facts, EUNAVAILABLE or
// EINTERNAL when the database fails (nothing is kept then); ENOTFOUND for
// a customer outside the caller's scope.
func (s *FactStore) Put(ctx context.Context, customerID string, facts []json.RawMessage) (PutResult, error) {
	res := PutResult{Rejected: []Rejection{}}
	if err := ValidCustomerID(customerID); err != nil {
		return res, err
	}
	customerID = pan.Mask(customerID) // an id is never a reason to keep a card number
	if err := s.inScope(ctx, customerID); err != nil {
		return res, err
	}
	if len(facts) > MaxFactsPerBatch {
		return res, errs.Coded(errs.EUNPROCESSABLE, "too_many_facts", "a batch carries at most %d facts (got %d)", MaxFactsPerBatch, len(facts)).
			WithDetails(map[string]any{"limit": MaxFactsPerBatch, "count": len(facts)})
	}
	// An erased customer's facts would bring their personal data back.
	var erased int64
	if err := s.db.WithContext(ctx).Table("erased_customers").Where("customer_id = ?", customerID).Count(&erased).Error; err != nil {
		return res, fmt.Errorf("is customer %s erased: %w", customerID, err)
	}
	if erased > 0 {
		return res, errs.Coded(errs.ECONFLICT, "customer_erased", "customer %s was erased (GDPR art. 17): Recourse keeps no facts about them", customerID)
	}
	now := s.clock.Now()
	rows := make([]factRow, 0, len(facts))
	seen := make(map[string]bool, len(facts))
	inBatchDup := 0
	for i, raw := range facts {
		in, err := DecodeFactInput(raw)
		if err == nil {
			var r factRow
			if r, err = toRow(customerID, in, now); err == nil {
				if seen[r.ID] {
					inBatchDup++
					continue
				}
				seen[r.ID] = true
				rows = append(rows, r)
				continue
			}
		}
		res.Rejected = append(res.Rejected, Rejection{Index: i, Error: detailOf(err)})
	}
	var inserted int64
	err := s.db.Transact(ctx, func(tx *gorm.DB) error {
		if len(rows) > 0 {
			q := tx.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(&rows, insertChunk)
			if q.Error != nil {
				return fmt.Errorf("insert facts for %s: %w", customerID, q.Error)
			}
			inserted = q.RowsAffected
		}
		if s.audit == nil {
			return nil
		}
		return s.audit.Record(ctx, tx, audit.Entry{Action: "facts.put", ObjectType: "customer", ObjectID: customerID,
			Detail: fmt.Sprintf("%d facts: %d accepted, %d duplicates, %d rejected", len(facts), inserted, int64(len(rows))-inserted+int64(inBatchDup), len(res.Rejected))})
	})
	if err != nil {
		return PutResult{Rejected: []Rejection{}}, storeErr(err, "keep the facts")
	}
	res.Accepted = int(inserted)
	res.Duplicates = len(rows) - int(inserted) + inBatchDup
	return res, nil
}

// PutFacts is Put for typed facts (the demo, tests, importers that build
// facts in Go).
func (s *FactStore) PutFacts(ctx context.Context, customerID string, facts []FactInput) (PutResult, error) {
	raws := make([]json.RawMessage, len(facts))
	for i, f := range facts {
		b, err := json.Marshal(f)
		if err != nil {
			return PutResult{}, fmt.Errorf("encode fact %d: %w", i, err)
		}
		raws[i] = b
	}
	return s.Put(ctx, customerID, raws)
}

func detailOf(err error) httpx.ErrorDetail {
	if e, ok := errs.As(err); ok {
		return httpx.ErrorDetail{Code: e.Code, Message: e.Message, Details: e.Details}
	}
	return httpx.ErrorDetail{Code: "invalid_request", Message: "the fact is invalid"}
}

func storeErr(err error, what string) error {
	if _, ok := errs.As(err); ok {
		return err
	}
	if db.IsUnavailable(err) {
		return errs.Wrap(errs.EUNAVAILABLE, err, "cannot %s right now: the database is unavailable", what)
	}
	return errs.Wrap(errs.EINTERNAL, err, "cannot %s", what)
}

// Facts returns customerID's facts matching q in occurred_at order, then id.
// It never returns another customer's facts. Errors: EINVALID for a bad
// customer id or query, EUNAVAILABLE / EINTERNAL from the database.
func (s *FactStore) Facts(ctx context.Context, customerID string, q FactQuery) ([]Fact, error) {
	if err := ValidCustomerID(customerID); err != nil {
		return nil, err
	}
	customerID = pan.Mask(customerID) // as Put keeps it
	if err := s.inScope(ctx, customerID); err != nil {
		return nil, err
	}
	for _, k := range q.Kinds {
		if !ValidFactKind(k) {
			return nil, errs.Coded(errs.EINVALID, "fact_kind_unknown", "kind %q is not one of %s", pan.Mask(string(k)), factKindList())
		}
	}
	if q.Limit < 0 {
		return nil, errs.Coded(errs.EINVALID, "invalid_limit", "limit may not be negative")
	}
	var rows []factRow
	err := s.db.Read(ctx, func(g *gorm.DB) error {
		tx := g.Model(&factRow{}).Where("customer_id = ?", customerID)
		if len(q.Kinds) > 0 {
			ks := make([]string, len(q.Kinds))
			for i, k := range q.Kinds {
				ks[i] = string(k)
			}
			tx = tx.Where("kind IN ?", ks)
		}
		if q.From != nil {
			tx = tx.Where("occurred_at >= ?", q.From.UTC())
		}
		if q.To != nil {
			tx = tx.Where("occurred_at < ?", q.To.UTC())
		}
		if q.Limit > 0 {
			tx = tx.Limit(q.Limit)
		}
		rows = nil
		return tx.Order("occurred_at, id").Find(&rows).Error
	})
	if err != nil {
		return nil, storeErr(fmt.Errorf("list facts of %s: %w", customerID, err), "list the facts")
	}
	out := make([]Fact, len(rows))
	for i, r := range rows {
		out[i] = r.fact()
	}
	return out, nil
}

// PolicyInput is a policy document as POST /policies takes it.
type PolicyInput struct {
	Key         string    `json:"key"`
	Version     string    `json:"version"`
	Title       string    `json:"title"`
	Body        string    `json:"body"`
	EffectiveAt time.Time `json:"effective_at"`
}

type policyRow struct {
	Key         string    `gorm:"column:key;primaryKey"`
	Version     string    `gorm:"column:version;primaryKey"`
	Title       string    `gorm:"column:title"`
	Body        string    `gorm:"column:body"`
	EffectiveAt time.Time `gorm:"column:effective_at"`
	CreatedBy   string    `gorm:"column:created_by"`
	CreatedAt   time.Time `gorm:"column:created_at"`
}

func (policyRow) TableName() string { return "dispute_policy_documents" }

func (r policyRow) doc() PolicyDocument {
	return PolicyDocument{Key: r.Key, Version: r.Version, Title: r.Title, Body: r.Body,
		EffectiveAt: r.EffectiveAt.UTC(), CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt.UTC()}
}

func validPolicyName(field, v string) error {
	if v == "" {
		return errs.Coded(errs.EINVALID, "policy_"+field+"_required", "%s is required", field)
	}
	if len(v) > 64 {
		return errs.Coded(errs.EINVALID, "policy_"+field+"_invalid", "%s has at most 64 characters", field)
	}
	for _, c := range v {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return errs.Coded(errs.EINVALID, "policy_"+field+"_invalid", "%s may hold only letters, digits, '_', '-' and '.'", field)
		}
	}
	return nil
}

// Validate checks a policy document before it is kept: key and version are
// short names (letters, digits, _ - .), title and body are required,
// effective_at is set. Errors are EINVALID.
func (p PolicyInput) Validate() error {
	if err := validPolicyName("key", p.Key); err != nil {
		return err
	}
	if err := validPolicyName("version", p.Version); err != nil {
		return err
	}
	if strings.TrimSpace(p.Title) == "" {
		return errs.Coded(errs.EINVALID, "policy_title_required", "title is required")
	}
	if len(p.Title) > 200 {
		return errs.Coded(errs.EINVALID, "policy_title_too_long", "title has at most 200 characters")
	}
	if strings.TrimSpace(p.Body) == "" {
		return errs.Coded(errs.EINVALID, "policy_body_required", "body is required: the text as customers were shown it")
	}
	if len(p.Body) > MaxPolicyBodyBytes {
		return errs.Coded(errs.EINVALID, "policy_body_too_large", "body has at most %d bytes", MaxPolicyBodyBytes)
	}
	if p.EffectiveAt.IsZero() {
		return errs.Coded(errs.EINVALID, "policy_effective_at_required", "effective_at is required (RFC 3339)")
	}
	return nil
}

// PutPolicy keeps a version of a policy document. A version, once kept,
// never changes: putting it again with the same title, body and
// effective_at returns the kept document with created false (idempotent);
// with different content it errs ECONFLICT (policy_version_exists). The
// creator is the principal in ctx. Errors: EINVALID (Validate), ECONFLICT,
// EUNAVAILABLE / EINTERNAL.
func (s *FactStore) PutPolicy(ctx context.Context, in PolicyInput) (doc PolicyDocument, created bool, err error) {
	// Masked before validation: a key or version holding a card number is
	// refused (a masked one is not a valid name), title and body are kept
	// masked.
	in.Key, in.Version, in.Title, in.Body = pan.Mask(in.Key), pan.Mask(in.Version), pan.Mask(in.Title), pan.Mask(in.Body)
	if err := in.Validate(); err != nil {
		return PolicyDocument{}, false, err
	}
	now := s.clock.Now()
	by := string(auth.ActorSystem)
	if p, ok := auth.FromContext(ctx); ok && p.Actor() != "" {
		by = p.Actor()
	}
	r := policyRow{Key: in.Key, Version: in.Version, Title: in.Title, Body: in.Body,
		EffectiveAt: in.EffectiveAt.UTC().Truncate(time.Microsecond), CreatedBy: by, CreatedAt: now}
	err = s.db.Transact(ctx, func(tx *gorm.DB) error {
		q := tx.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&r)
		if q.Error != nil {
			return fmt.Errorf("insert policy %s v%s: %w", in.Key, in.Version, q.Error)
		}
		if q.RowsAffected == 1 {
			created = true
			doc = r.doc()
			if s.audit == nil {
				return nil
			}
			return s.audit.Record(ctx, tx, audit.Entry{Action: "policy_document.create", ObjectType: "policy_document",
				ObjectID: in.Key + "/" + in.Version, After: audit.Marshal(map[string]any{"key": r.Key, "version": r.Version,
					"title": r.Title, "effective_at": r.EffectiveAt, "body_bytes": len(r.Body)})})
		}
		var old policyRow
		if err := tx.WithContext(ctx).Where("key = ? AND version = ?", in.Key, in.Version).Take(&old).Error; err != nil {
			return fmt.Errorf("read policy %s v%s: %w", in.Key, in.Version, err)
		}
		if old.Title != r.Title || old.Body != r.Body || !old.EffectiveAt.Equal(r.EffectiveAt) {
			return errs.Coded(errs.ECONFLICT, "policy_version_exists",
				"policy %s version %s is already kept with different content; a version never changes: publish a new version", in.Key, in.Version)
		}
		doc = old.doc()
		return nil
	})
	if err != nil {
		return PolicyDocument{}, false, storeErr(err, "keep the policy document")
	}
	return doc, created, nil
}

// PolicyDocument returns one version of a policy. Errors: ENOTFOUND when no
// such key + version is kept, EUNAVAILABLE / EINTERNAL.
func (s *FactStore) PolicyDocument(ctx context.Context, key, version string) (PolicyDocument, error) {
	var r policyRow
	err := s.db.Read(ctx, func(g *gorm.DB) error {
		return g.Where("key = ? AND version = ?", key, version).Take(&r).Error
	})
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return PolicyDocument{}, errs.Coded(errs.ENOTFOUND, "policy_not_found", "no policy document %s version %s", pan.Mask(key), pan.Mask(version))
	}
	if err != nil {
		return PolicyDocument{}, storeErr(fmt.Errorf("read policy %s v%s: %w", key, version, err), "read the policy document")
	}
	return r.doc(), nil
}

// ListPolicies returns the policy documents, of one key when key is not
// empty, ordered by key, then effective_at, then version. Errors:
// EUNAVAILABLE / EINTERNAL.
func (s *FactStore) ListPolicies(ctx context.Context, key string) ([]PolicyDocument, error) {
	var rows []policyRow
	err := s.db.Read(ctx, func(g *gorm.DB) error {
		q := g.Model(&policyRow{})
		if key != "" {
			q = q.Where("key = ?", key)
		}
		rows = nil
		return q.Order("key, effective_at, version").Find(&rows).Error
	})
	if err != nil {
		return nil, storeErr(fmt.Errorf("list policies: %w", err), "list the policy documents")
	}
	out := make([]PolicyDocument, len(rows))
	for i, r := range rows {
		out[i] = r.doc()
	}
	return out, nil
}
