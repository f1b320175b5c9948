package stripetest

import (
	crand "crypto/rand"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
)

// APIVersion is the Stripe API version every generated event claims. It
// equals stripe.APIVersion of stripe-go v76.
const APIVersion = "2023-10-16"

// Generator produces Stripe-shaped objects and events. All randomness comes
// from a seeded PRNG, so a Generator created with the same seed and options
// yields the same output for the same sequence of calls. Ids are unique per
// Generator. A Generator is safe for concurrent use, although output is only
// reproducible when calls happen in a fixed order.
type Generator struct {
	mu       sync.Mutex
	rng      *rand.Rand
	seq      uint64
	clock    func() time.Time
	currency string
	account  string
	coreOnly bool
	platform string
	business string
	plans    []Plan
}

// Option configures a Generator.
type Option func(*Generator)

// WithClock sets the clock used for default timestamps (objects built
// without an explicit Created time, events without WithCreated, and
// DistinctEvents). The default is time.Now. Use a fixed clock for fully
// reproducible output from those calls; stories take explicit start times and
// never consult the clock.
func WithClock(now func() time.Time) Option {
	return func(g *Generator) { g.clock = now }
}

// WithCurrency sets the three-letter ISO currency (lower case, e.g. "eur")
// used by default. The default is "usd".
func WithCurrency(currency string) Option {
	return func(g *Generator) { g.currency = strings.ToLower(currency) }
}

// WithAccount makes every event produced by the Generator carry the given
// connected account id ("acct_…") in its "account" field, as Stripe does for
// Connect webhooks.
func WithAccount(account string) Option {
	return func(g *Generator) { g.account = account }
}

// WithCoreEventsOnly drops ancillary events from stories: customer.created,
// invoice.created, invoice.finalized, invoice.payment_succeeded,
// charge.succeeded, charge.failed, charge.refund.updated and the invoice.paid
// of a trial's $0 first invoice. Stripe sends those too, so they are
// included by default. Ids of the remaining events do not change.
func WithCoreEventsOnly() Option {
	return func(g *Generator) { g.coreOnly = true }
}

// WithBusinessName sets the merchant name shown on invoices
// (account_name). The default is "Recourse Demo, Inc.".
func WithBusinessName(name string) Option {
	return func(g *Generator) { g.business = name }
}

// WithPlans replaces the default price catalog. Empty PriceID/ProductID
// fields are filled with generated ids, an empty Currency with the
// Generator's currency, an empty Interval with "month" and a zero TrialDays
// with 14.
func WithPlans(plans ...Plan) Option {
	return func(g *Generator) { g.plans = append([]Plan(nil), plans...) }
}

// Plan is one recurring price of the simulated business.
type Plan struct {
	PriceID    string // price_…
	ProductID  string // prod_…
	Name       string // product name, e.g. "Pro"
	UnitAmount int64  // in the currency's minor unit
	Currency   string // lower-case ISO code
	Interval   string // "day", "week", "month" or "year"
	TrialDays  int    // trial length used by trial stories
}

// Next returns t advanced by one billing interval of the plan.
func (p Plan) Next(t time.Time) time.Time {
	switch p.Interval {
	case "day":
		return t.AddDate(0, 0, 1)
	case "week":
		return t.AddDate(0, 0, 7)
	case "year":
		return t.AddDate(1, 0, 0)
	default:
		return t.AddDate(0, 1, 0)
	}
}

// New returns a Generator seeded with seed.
func New(seed uint64, opts ...Option) *Generator {
	g := &Generator{
		rng:      rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		clock:    time.Now,
		currency: "usd",
		business: "Recourse Demo, Inc.",
	}
	for _, o := range opts {
		o(g)
	}
	g.platform = g.NewID("acct_")
	if len(g.plans) == 0 {
		g.plans = []Plan{
			{Name: "Starter", UnitAmount: 1500, Interval: "month"},
			{Name: "Pro", UnitAmount: 4900, Interval: "month"},
			{Name: "Team", UnitAmount: 19900, Interval: "month"},
			{Name: "Pro (annual)", UnitAmount: 49000, Interval: "year"},
		}
	}
	for i := range g.plans {
		p := &g.plans[i]
		if p.ProductID == "" {
			p.ProductID = g.NewID("prod_")
		}
		if p.PriceID == "" {
			p.PriceID = g.NewID("price_")
		}
		if p.Currency == "" {
			p.Currency = g.currency
		}
		if p.Interval == "" {
			p.Interval = "month"
		}
		if p.TrialDays == 0 {
			p.TrialDays = 14
		}
		if p.Name == "" {
			p.Name = "Plan " + string(rune('A'+i%26))
		}
	}
	return g
}

// RandomSeed returns a seed read from crypto/rand, for callers that want
// non-reproducible output.
func RandomSeed() uint64 {
	var b [8]byte
	if _, err := crand.Read(b[:]); err != nil {
		return uint64(time.Now().UnixNano())
	}
	return binary.LittleEndian.Uint64(b[:])
}

// Plans returns a copy of the Generator's price catalog.
func (g *Generator) Plans() []Plan {
	return append([]Plan(nil), g.plans...)
}

// Currency returns the Generator's default currency.
func (g *Generator) Currency() string { return g.currency }

func (g *Generator) now() time.Time { return g.clock().Truncate(time.Second) }

// --- randomness -----------------------------------------------------------

const (
	digits  = "0123456789"
	letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	alnum   = digits + letters
	// maxDigitRun bounds consecutive digits in random strings so that no
	// payload ever contains something that looks like a card number.
	maxDigitRun = 4
)

func (g *Generator) intn(n int) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.rng.IntN(n)
}

// rangeInt returns a uniform int in [lo, hi].
func (g *Generator) rangeInt(lo, hi int) int {
	if hi <= lo {
		return lo
	}
	return lo + g.intn(hi-lo+1)
}

func (g *Generator) chance(p float64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.rng.Float64() < p
}

// between returns a duration in [lo, hi] with one-second granularity.
func (g *Generator) between(lo, hi time.Duration) time.Duration {
	s := g.rangeInt(int(lo/time.Second), int(hi/time.Second))
	return time.Duration(s) * time.Second
}

// weighted returns an index into weights chosen proportionally.
func (g *Generator) weighted(weights []int) int {
	total := 0
	for _, w := range weights {
		total += w
	}
	r := g.intn(total)
	for i, w := range weights {
		if r < w {
			return i
		}
		r -= w
	}
	return len(weights) - 1
}

// randString returns n characters from alphabet, never more than
// maxDigitRun digits in a row.
func (g *Generator) randString(n int, alphabet string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.randStringLocked(n, alphabet)
}

func (g *Generator) randStringLocked(n int, alphabet string) string {
	var b strings.Builder
	b.Grow(n)
	run := 0
	for i := 0; i < n; i++ {
		c := alphabet[g.rng.IntN(len(alphabet))]
		if c >= '0' && c <= '9' {
			if run >= maxDigitRun {
				c = letters[g.rng.IntN(len(letters))]
				run = 0
			} else {
				run++
			}
		} else {
			run = 0
		}
		b.WriteByte(c)
	}
	return b.String()
}

// shortIDs holds the length of the part after the prefix for prefixes whose
// ids are shorter than the usual 24 characters and, like Stripe's customer,
// product and request ids, do not start with "1".
var shortIDs = map[string]int{
	"cus_":  14,
	"req_":  14,
	"prod_": 14,
}

// NewID returns a new id with the given prefix (for example "cus_" or
// "ch_"), shaped like Stripe's: 14 characters after "cus_", "prod_" and
// "req_", 16 after "acct_" and 24 otherwise, the longer ones starting with
// "1" like Stripe's time-ordered ids. Ids are unique per Generator and
// contain no long digit runs.
func (g *Generator) NewID(prefix string) string {
	n, short := shortIDs[prefix]
	switch {
	case short:
	case prefix == "acct_":
		n = 16
	default:
		n = 24
	}
	g.mu.Lock()
	g.seq++
	seq := g.seq
	var body string
	if short {
		body = g.randStringLocked(n-5, alnum)
	} else {
		body = "1" + g.randStringLocked(n-6, alnum)
	}
	g.mu.Unlock()
	return prefix + body + seqSuffix(seq)
}

// seqSuffix encodes seq in letters only. Sequence numbers below 52⁵ are
// scrambled by a bijection modulo 52⁵ (so ids look random) and encoded in
// exactly five letters; larger ones are encoded plainly in six or more.
// Because letters are never digits the suffix cannot extend a digit run, and
// because the mapping is injective, ids are unique.
func seqSuffix(seq uint64) string {
	const base = uint64(len(letters))
	const space = base * base * base * base * base
	width := 5
	if seq < space {
		// 0x9E3779B1 is odd and not a multiple of 13, hence coprime with 52⁵.
		seq = (seq*0x9E3779B1 + 0x5bd1e995) % space
	} else {
		width = 6
	}
	var buf [16]byte
	i := len(buf)
	for n := 0; n < width || seq > 0; n++ {
		i--
		buf[i] = letters[seq%base]
		seq /= base
	}
	return string(buf[i:])
}

// uuid returns a random RFC 4122 version 4 UUID string.
func (g *Generator) uuid() string {
	g.mu.Lock()
	hi, lo := g.rng.Uint64(), g.rng.Uint64()
	g.mu.Unlock()
	hi = hi&^0xf000 | 0x4000
	lo = lo&^(0xc<<60) | 0x8<<60
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x",
		hi>>32, (hi>>16)&0xffff, hi&0xffff, lo>>48, lo&0xffffffffffff)
}

// --- people and cards ----------------------------------------------------

var firstNames = []string{
	"Ava", "Liam", "Olivia", "Noah", "Emma", "Mateo", "Sofia", "Lucas",
	"Amara", "Hiro", "Chloe", "Ethan", "Priya", "Diego", "Zoe", "Malik",
	"Ingrid", "Tomas", "Leila", "Kofi", "Hannah", "Arjun", "Mei", "Jonas",
}

var lastNames = []string{
	"Smith", "Garcia", "Nguyen", "Patel", "Johnson", "Müller", "Rossi",
	"Kim", "Okafor", "Silva", "Brown", "Tanaka", "Dubois", "Kowalski",
	"Andersson", "O'Brien", "Haddad", "Cohen", "Moreau", "Reyes",
}

// person returns a random name and matching example.com email address.
func (g *Generator) person() (name, email string) {
	first := firstNames[g.intn(len(firstNames))]
	last := lastNames[g.intn(len(lastNames))]
	local := strings.ToLower(first + "." + asciiOnly(last))
	return first + " " + last, fmt.Sprintf("%s%d@example.com", local, g.intn(100))
}

func asciiOnly(s string) string {
	r := strings.NewReplacer("ü", "u", "'", "")
	return r.Replace(s)
}

// Card describes the card a customer pays with. It never holds a full card
// number, only the last four digits.
type Card struct {
	Brand       string // "visa", "mastercard" or "amex"
	Last4       string
	ExpMonth    int
	ExpYear     int
	Fingerprint string
	Country     string // ISO 3166-1 alpha-2
	Funding     string // "credit", "debit" or "prepaid"
}

var cardCountries = []string{"US", "US", "US", "US", "GB", "CA", "DE", "FR", "AU", "NL"}

// NewCard returns a random card of the given brand ("" picks a brand with a
// realistic mix: about 55% visa, 30% mastercard, 15% amex). Expiry dates are
// relative to the Generator's clock.
func (g *Generator) NewCard(brand string) Card {
	return g.card(brand, g.now())
}

func (g *Generator) card(brand string, ref time.Time) Card {
	if brand == "" {
		brand = []string{"visa", "mastercard", "amex"}[g.weighted([]int{55, 30, 15})]
	}
	funding := []string{"credit", "debit", "prepaid"}[g.weighted([]int{60, 35, 5})]
	if brand == "amex" {
		funding = "credit"
	}
	return Card{
		Brand:       brand,
		Last4:       fmt.Sprintf("%04d", g.intn(10000)),
		ExpMonth:    g.rangeInt(1, 12),
		ExpYear:     ref.Year() + g.rangeInt(1, 5),
		Fingerprint: g.randString(16, alnum),
		Country:     cardCountries[g.intn(len(cardCountries))],
		Funding:     funding,
	}
}
