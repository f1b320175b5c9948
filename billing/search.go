package billing

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/httpx"
)

// Customer search limits. They are part of the API contract of
// GET /customers?q=.
const (
	// MaxSearchQueryLen bounds q (bytes, after trimming spaces).
	MaxSearchQueryLen = 200
	// DefaultSearchLimit is the page size when limit is not given.
	DefaultSearchLimit = 20
	// MaxSearchLimit is the largest page; limit=101 is refused, not clamped.
	MaxSearchLimit = 100
)

// SearchMatch says how a query was read, and so which customers it finds.
type SearchMatch string

// Kinds of search, chosen from the shape of the query.
const (
	// MatchID: a provider id (cus_, sub_, in_, ch_/py_, pi_, re_/pyr_,
	// dp_/du_, issfr_) finds that object's customer.
	MatchID SearchMatch = "id"
	// MatchEmail: text with an @ finds customers whose email starts with
	// it, case-insensitively; an exact match sorts first.
	MatchEmail SearchMatch = "email"
	// MatchCard: four digits, alone or with a card brand in either order
	// ("4242", "visa 4242", "4242 visa"), finds customers with a mirrored
	// charge on such a card.
	MatchCard SearchMatch = "card"
	// MatchName: any other text finds customers whose name starts with it,
	// case-insensitively (the whole name: "ada lo" finds "Ada Lovelace",
	// "lovelace" does not). When no name matches, the same text is tried
	// as the start of an email ("ada" finds ada@example.com), and the
	// answer says MatchEmail.
	MatchName SearchMatch = "name"
)

// CustomerSearch is a parsed search request.
type CustomerSearch struct {
	Query  string
	Limit  int    // 1..MaxSearchLimit; 0 means DefaultSearchLimit
	Cursor string // from a previous answer's next_cursor
}

// CustomerHit is one customer a search found.
type CustomerHit struct {
	ID      string    `json:"id"`
	Email   string    `json:"email"`
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	Deleted bool      `json:"deleted"`
	// Mirrored is false for a customer known only from its objects (a
	// provider id search); email, name and created are then empty.
	Mirrored bool `json:"mirrored"`
	// OpenCases is how many open cases name the customer (0 when the
	// store counts no cases).
	OpenCases int `json:"open_cases"`
}

// SearchResult is a page of customers, in a stable order: by email or
// name (case-insensitive, byte order) then id, or by id for card matches.
type SearchResult struct {
	httpx.List[CustomerHit]
	Match SearchMatch `json:"match"`
}

// OpenCaseCounter counts open cases per customer (*cases.Service). The
// billing package does not read cases itself: cases own them.
type OpenCaseCounter interface {
	// OpenCaseCounts returns, for each of ids with open cases, how many.
	OpenCaseCounts(ctx context.Context, customerIDs []string) (map[string]int, error)
}

// CountingOpenCases returns the same store, whose searches fill
// CustomerHit.OpenCases from c.
func (s *Store) CountingOpenCases(c OpenCaseCounter) *Store {
	cp := *s
	cp.openCases = c
	return &cp
}

// searchCursor is the position after the last hit of a page.
type searchCursor struct {
	Match SearchMatch `json:"m"`
	Key   string      `json:"k,omitempty"` // lower(email) or lower(name) of the last hit
	ID    string      `json:"i"`
}

// idPrefixes maps provider id prefixes to the object they name.
var idPrefixes = []struct {
	prefix string
	kind   ObjectKind
}{
	{"cus_", KindCustomer}, {"sub_", KindSubscription}, {"in_", KindInvoice},
	{"ch_", KindCharge}, {"py_", KindCharge}, {"pi_", "payment_intent"},
	{"re_", KindRefund}, {"pyr_", KindRefund}, {"dp_", KindDispute}, {"du_", KindDispute},
	{"issfr_", KindFraudWarning},
}

// cardBrands maps what an agent types to the brand spellings the provider
// uses (payment_method_details.card.brand, and the older sources' brand).
var cardBrands = map[string][]string{
	"visa":       {"visa"},
	"mastercard": {"mastercard", "master card"},
	"mc":         {"mastercard", "master card"},
	"amex":       {"amex", "american express"},
	"discover":   {"discover"},
	"jcb":        {"jcb"},
	"diners":     {"diners", "diners club"},
	"unionpay":   {"unionpay"},
}

var (
	last4RE   = regexp.MustCompile(`^[0-9]{4}$`)
	idShapeRE = regexp.MustCompile(`^[a-z]+_[A-Za-z0-9_]+$`)
)

// parseCard reads "4242", "visa 4242" or "4242 visa": the last four and the
// brand spellings (nil for any brand). ok is false for anything else.
func parseCard(q string) (last4 string, brands []string, ok bool) {
	for _, tok := range strings.Fields(strings.ToLower(q)) {
		switch {
		case last4RE.MatchString(tok) && last4 == "":
			last4 = tok
		case cardBrands[tok] != nil && brands == nil:
			brands = cardBrands[tok]
		default:
			return "", nil, false
		}
	}
	return last4, brands, last4 != ""
}

// classify decides how q is read.
func classify(q string) SearchMatch {
	if idShapeRE.MatchString(q) {
		for _, p := range idPrefixes {
			if strings.HasPrefix(q, p.prefix) {
				return MatchID
			}
		}
	}
	if strings.Contains(q, "@") {
		return MatchEmail
	}
	if _, _, ok := parseCard(q); ok {
		return MatchCard
	}
	return MatchName
}

// SearchCustomers finds customers by email, name, any provider id or card
// (brand and last four), reading the query's shape as SearchMatch
// describes. Pages are keyset-paged and every kind of search is one index
// range scan (migration 0015), so it stays fast on millions of customers.
// Errors: EINVALID (query_required, query_too_long, invalid_limit,
// invalid_cursor); EINTERNAL from the database.
func (s *Store) SearchCustomers(ctx context.Context, in CustomerSearch) (SearchResult, error) {
	q := strings.TrimSpace(in.Query)
	switch {
	case q == "":
		return SearchResult{}, errs.Coded(errs.EINVALID, "query_required", "q is required: an email, a name, a provider id or a card (visa 4242)")
	case len(q) > MaxSearchQueryLen:
		return SearchResult{}, errs.Coded(errs.EINVALID, "query_too_long", "q may be at most %d characters", MaxSearchQueryLen)
	}
	limit := in.Limit
	if limit == 0 {
		limit = DefaultSearchLimit
	}
	if limit < 1 || limit > MaxSearchLimit {
		return SearchResult{}, errs.Coded(errs.EINVALID, "invalid_limit", "limit must be a whole number from 1 to %d", MaxSearchLimit)
	}
	match := classify(q)
	var cur searchCursor
	after, err := httpx.DecodeCursor(in.Cursor, &cur)
	if err != nil {
		return SearchResult{}, err
	}
	if after {
		// A cursor continues the search that issued it (a name search that
		// fell back to email goes on as an email search).
		if cur.ID == "" || !(cur.Match == match || (match == MatchName && cur.Match == MatchEmail)) {
			return SearchResult{}, errs.Coded(errs.EINVALID, "invalid_cursor", "cursor belongs to another search")
		}
		match = cur.Match
	}
	var rows []customerRow
	switch match {
	case MatchID:
		hit, found, err := s.searchByID(ctx, q)
		if err != nil {
			return SearchResult{}, err
		}
		res := SearchResult{List: httpx.NewList([]CustomerHit{}, limit, nil), Match: MatchID}
		if found && !after {
			res.Data = []CustomerHit{hit}
		}
		return s.withOpenCases(ctx, res)
	case MatchCard:
		last4, brands, _ := parseCard(q)
		rows, err = s.searchByCard(ctx, last4, brands, cur, after, limit)
	case MatchName:
		rows, err = s.searchByPrefix(ctx, "name", q, cur, after, limit)
		if err == nil && len(rows) == 0 && !after {
			match = MatchEmail
			rows, err = s.searchByPrefix(ctx, "email", q, cur, after, limit)
		}
	default:
		rows, err = s.searchByPrefix(ctx, string(match), q, cur, after, limit)
	}
	if err != nil {
		return SearchResult{}, err
	}
	hits := make([]CustomerHit, len(rows))
	for i := range rows {
		normalizeTimes(&rows[i])
		hits[i] = hitOf(rows[i].Customer)
	}
	res := SearchResult{Match: match, List: httpx.NewList(hits, limit, func(h CustomerHit) any {
		c := searchCursor{Match: match, ID: h.ID}
		switch match {
		case MatchEmail:
			c.Key = h.Email
		case MatchName:
			c.Key = h.Name
		}
		return c
	})}
	return s.withOpenCases(ctx, res)
}

func hitOf(c Customer) CustomerHit {
	return CustomerHit{ID: c.ID, Email: c.Email, Name: c.Name, Created: c.Created, Deleted: c.Deleted, Mirrored: true}
}

// customersInScope narrows q, a query on billing_customers, to the
// customers in the scope of ctx's principal (auth.Scope).
func customersInScope(ctx context.Context, q *gorm.DB) *gorm.DB {
	if cond, args := auth.ScopeOf(ctx).CustomerSQL("billing_customers.id"); cond != "" {
		return q.Where(cond, args...)
	}
	return q
}

// searchByPrefix finds customers whose lower(column) starts with lower(q),
// in (lower(column), id) order after cur: one range scan of
// billing_customers_<column>_search_idx.
func (s *Store) searchByPrefix(ctx context.Context, column, q string, cur searchCursor, after bool, limit int) ([]customerRow, error) {
	key := s.db.Dialect.BytewiseSQL("lower(" + column + ")")
	tx := s.conn(ctx).Where(key+" >= lower(?) AND "+key+" < lower(?)", q, q+"\U0010FFFF")
	if after {
		// The cursor holds the hit's own text; lower() it the same way.
		tx = tx.Where("("+key+" > lower(?) OR ("+key+" = lower(?) AND id > ?))", cur.Key, cur.Key, cur.ID)
	}
	tx = customersInScope(ctx, tx)
	var rows []customerRow
	if err := tx.Order(key + ", id").Limit(limit + 1).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("search customers by %s: %w", column, err)
	}
	return rows, nil
}

// searchByCard finds the mirrored customers with a charge on a card ending
// in last4 (of one of brands, when given), in id order after cur.
func (s *Store) searchByCard(ctx context.Context, last4 string, brands []string, cur searchCursor, after bool, limit int) ([]customerRow, error) {
	sub := s.conn(ctx).Model(&chargeRow{}).Select("customer_id").Where("card_last4 = ? AND customer_id <> ''", last4)
	if brands != nil {
		sub = sub.Where("lower(card_brand) IN ?", brands)
	}
	tx := s.conn(ctx).Where("id IN (?)", sub)
	if after {
		tx = tx.Where("id > ?", cur.ID)
	}
	tx = customersInScope(ctx, tx)
	var rows []customerRow
	if err := tx.Order("id").Limit(limit + 1).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("search customers by card: %w", err)
	}
	return rows, nil
}

// searchByID finds the customer of the object a provider id names.
func (s *Store) searchByID(ctx context.Context, id string) (CustomerHit, bool, error) {
	var kind ObjectKind
	for _, p := range idPrefixes {
		if strings.HasPrefix(id, p.prefix) {
			kind = p.kind
			break
		}
	}
	customer := ""
	var err error
	switch kind {
	case KindCustomer:
		customer = id
	case KindSubscription:
		var v Subscription
		if v, err = s.Subscription(ctx, id); err == nil {
			customer = v.CustomerID
		}
	case KindInvoice:
		var v Invoice
		if v, err = s.Invoice(ctx, id); err == nil {
			customer = v.CustomerID
		}
	case KindCharge:
		var v Charge
		if v, err = s.Charge(ctx, id); err == nil {
			customer = v.CustomerID
		}
	case "payment_intent":
		var v []Charge
		if v, err = s.ChargesByPaymentIntent(ctx, id); err == nil {
			for _, c := range v {
				keep(&customer, c.CustomerID)
			}
		}
	case KindRefund:
		var v Refund
		if v, err = s.Refund(ctx, id); err == nil {
			customer = v.CustomerID
		}
	case KindDispute:
		var v Dispute
		if v, err = s.Dispute(ctx, id); err == nil {
			customer = v.CustomerID
		}
	case KindFraudWarning:
		var v FraudWarning
		if v, err = s.FraudWarning(ctx, id); err == nil {
			customer = v.CustomerID
		}
	}
	if errs.Is(err, errs.ENOTFOUND) || (err == nil && customer == "") {
		return CustomerHit{}, false, nil
	}
	if err != nil {
		return CustomerHit{}, false, err
	}
	ov, err := s.CustomerOverview(ctx, customer)
	if errs.Is(err, errs.ENOTFOUND) {
		return CustomerHit{}, false, nil
	}
	if err != nil {
		return CustomerHit{}, false, err
	}
	if !ov.Mirrored {
		return CustomerHit{ID: customer}, true, nil
	}
	return hitOf(ov.Customer), true, nil
}

// withOpenCases fills each hit's OpenCases, when the store counts cases.
func (s *Store) withOpenCases(ctx context.Context, res SearchResult) (SearchResult, error) {
	if s.openCases == nil || len(res.Data) == 0 {
		return res, nil
	}
	ids := make([]string, len(res.Data))
	for i, h := range res.Data {
		ids[i] = h.ID
	}
	counts, err := s.openCases.OpenCaseCounts(ctx, ids)
	if err != nil {
		return SearchResult{}, fmt.Errorf("count open cases of %d customers: %w", len(ids), err)
	}
	for i := range res.Data {
		res.Data[i].OpenCases = counts[res.Data[i].ID]
	}
	return res, nil
}

// CustomerByEmail returns the one mirrored, not deleted customer whose email
// is email (case-insensitive); ok is false when there is none or more than
// one (an inbound ticket is then not linked to a guess).
func (s *Store) CustomerByEmail(ctx context.Context, email string) (string, bool, error) {
	email = strings.TrimSpace(email)
	if !strings.Contains(email, "@") {
		return "", false, nil
	}
	res, err := s.SearchCustomers(ctx, CustomerSearch{Query: email, Limit: 3})
	if err != nil {
		return "", false, err
	}
	id, n := "", 0
	for _, h := range res.Data {
		if h.Mirrored && !h.Deleted && strings.EqualFold(h.Email, email) {
			id, n = h.ID, n+1
		}
	}
	return id, n == 1, nil
}
