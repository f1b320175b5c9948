package disputes

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/recourse-hq/recourse/billing"
	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/internal/pan"
)

// caseEvidence is everything the workbench knows about one dispute case:
// the case, the mirror's objects and the customer's own facts.
// Assembly is a pure function of it (and of now).
type caseEvidence struct {
	Case      cases.Case
	Dispute   billing.Dispute
	Charge    billing.Charge // zero when the charge is not mirrored
	Customer  billing.Customer
	Subs      []billing.Subscription
	Invoices  []billing.Invoice       // of the customer's subscriptions, oldest first
	Charges   []billing.Charge        // the customer's, oldest first
	Refunds   []billing.Refund        // on the customer's charges, oldest first
	Fraud     map[string]bool         // charge id → an early fraud warning is on record
	Billing   []billing.TimelineEntry // the customer's billing timeline, oldest first (the latest maxBillingEvents)
	Facts     []Fact                  // the customer's only, occurred_at order
	Policies  map[PolicyRef]PolicyDocument
	Checklist Checklist
	Now       time.Time

	byKinds map[string][]Fact // factsOf's memo
}

// Caps that keep each field and the packet within Stripe's limits.
const (
	maxLogLines      = 120 // access_activity_log lines and exhibit rows
	maxLogBefore     = 30  // of which at most this many before the charge
	maxNoticeRows    = 40
	maxDeliveryRows  = 40
	maxCommEntries   = 10
	maxCommChars     = 500
	maxPolicyExcerpt = 2500
	maxHistoryRows   = 60
	maxFactDataChars = 160
	maxBillingEvents = 40
)

const dayFmt = "2006-01-02"
const timeFmt = "2006-01-02 15:04 UTC"

func day(t time.Time) string { return t.UTC().Format(dayFmt) }
func ts(t time.Time) string  { return t.UTC().Format(timeFmt) }

// clean makes text safe to send: card numbers masked, links unlinked
// (scheme and "www." removed: banks read nothing external, and Stripe's
// text fields must carry none).
func clean(s string) string {
	for { // removing one link can join the text around it into another
		t := unlink(s)
		if t == s {
			break
		}
		s = t
	}
	return pan.Mask(s) // after: joined text could form a card number
}

// unlink drops, in one pass, every http:// and https:// (any case) and
// every "www." that starts a word, which is what [findAnyLink] looks for.
func unlink(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		switch {
		case hasPrefixFoldASCII(s[i:], "https://"):
			i += len("https://")
			continue
		case hasPrefixFoldASCII(s[i:], "http://"):
			i += len("http://")
			continue
		case hasPrefixFoldASCII(s[i:], "www.") && (b.Len() == 0 || !isWordByte(b.String()[b.Len()-1])) && i+4 < len(s) && isWordByte(s[i+4]):
			i += 4
			continue
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

// truncateRunes cuts s to at most n characters, ending in "…" when cut.
func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func money(amount int64, currency string) string { return billing.FormatMoney(amount, currency) }

// factsOf returns the facts of the given kinds, in order (computed once
// per set of kinds; callers must not modify the result).
func (ev *caseEvidence) factsOf(kinds ...FactKind) []Fact {
	key := ""
	for _, k := range kinds {
		key += string(k) + ","
	}
	if out, ok := ev.byKinds[key]; ok {
		return out
	}
	var out []Fact
	for _, f := range ev.Facts {
		if slices.Contains(kinds, f.Kind) {
			out = append(out, f)
		}
	}
	if ev.byKinds == nil {
		ev.byKinds = map[string][]Fact{}
	}
	ev.byKinds[key] = out
	return out
}

// chargeTime is when the disputed charge was made (the dispute's creation
// when the charge is not mirrored).
func (ev *caseEvidence) chargeTime() time.Time {
	if !ev.Charge.Created.IsZero() {
		return ev.Charge.Created
	}
	return ev.Dispute.Created
}

func (ev *caseEvidence) subscription() (billing.Subscription, bool) {
	if ev.Charge.InvoiceID != "" {
		for _, inv := range ev.Invoices {
			if inv.ID == ev.Charge.InvoiceID {
				for _, s := range ev.Subs {
					if s.ID == inv.SubscriptionID {
						return s, true
					}
				}
			}
		}
	}
	if id := deref(ev.Case.Links.Subscription); id != "" {
		for _, s := range ev.Subs {
			if s.ID == id {
				return s, true
			}
		}
	}
	if len(ev.Subs) > 0 {
		return ev.Subs[len(ev.Subs)-1], true
	}
	return billing.Subscription{}, false
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// factLine describes an activity fact in one line.
func factLine(f Fact) string {
	parts := []string{ts(f.OccurredAt), string(f.Kind)}
	if f.IP != "" {
		parts = append(parts, "IP "+f.IP)
	}
	if f.DeviceID != "" {
		parts = append(parts, "device "+f.DeviceID)
	} else if f.DeviceFingerprint != "" {
		parts = append(parts, "device fingerprint "+f.DeviceFingerprint)
	}
	if f.AccountID != "" {
		parts = append(parts, "account "+f.AccountID)
	}
	if d := dataText(f.Data); d != "" {
		parts = append(parts, d)
	}
	return clean(strings.Join(parts, " | "))
}

// dataText renders a fact's data compactly: "key: value; …", keys sorted.
func dataText(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil || len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		v := m[k]
		var s string
		switch x := v.(type) {
		case string:
			s = x
		default:
			b, _ := json.Marshal(x)
			s = string(b)
		}
		parts = append(parts, k+": "+s)
	}
	return truncateRunes(clean(strings.Join(parts, "; ")), maxFactDataChars)
}

func dataField(raw json.RawMessage, key string) string {
	if len(raw) == 0 {
		return ""
	}
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return ""
	}
	s, _ := m[key].(string)
	return clean(s)
}

// activityWindow picks the activity facts to show: at most maxLogBefore
// before the charge (the latest ones) and the rest after it (the earliest
// ones), in time order, with how many were left out.
func (ev *caseEvidence) activityWindow() ([]Fact, int) {
	all := ev.factsOf(FactSignup, FactLogin, FactUsage)
	at := ev.chargeTime()
	split := sort.Search(len(all), func(i int) bool { return !all[i].OccurredAt.Before(at) })
	before, after := all[:split], all[split:]
	nb := min(len(before), maxLogBefore)
	na := min(len(after), maxLogLines-nb)
	if na < maxLogLines-nb { // few after: show more before
		nb = min(len(before), maxLogLines-na)
	}
	out := make([]Fact, 0, nb+na)
	// The signup is always worth showing when it was left out.
	if nb < len(before) && before[0].Kind == FactSignup && nb > 0 {
		out = append(out, before[0])
		nb--
	}
	out = append(out, before[len(before)-nb:]...)
	out = append(out, after[:na]...)
	return out, len(all) - len(out)
}

// purchaseIP is the IP the customer used closest to the purchase: the last
// activity at or before it (within 30 days), else the first within a day
// after, else the sign-up's.
func (ev *caseEvidence) purchaseIP() (string, *Fact) {
	return ipNear(ev.Facts, ev.chargeTime(), purchaseIPWithin)
}

// How far before a purchase the activity that identifies it may be: the
// purchase IP of the disputed charge, and the CE 3.0 identifiers of each
// charge (identifiers captured at purchase time).
const (
	purchaseIPWithin = 30 * 24 * time.Hour
	ce3Within        = 48 * time.Hour
)

func ipNear(facts []Fact, at time.Time, within time.Duration) (string, *Fact) {
	split := sort.Search(len(facts), func(i int) bool { return facts[i].OccurredAt.After(at) })
	for i := split - 1; i >= 0; i-- {
		if at.Sub(facts[i].OccurredAt) > within {
			break
		}
		if facts[i].IP != "" && isActivity(facts[i].Kind) {
			return facts[i].IP, &facts[i]
		}
	}
	for i := split; i < len(facts); i++ {
		if facts[i].OccurredAt.Sub(at) > 24*time.Hour {
			break
		}
		if facts[i].IP != "" && isActivity(facts[i].Kind) {
			return facts[i].IP, &facts[i]
		}
	}
	return "", nil
}

func isActivity(k FactKind) bool {
	return k == FactSignup || k == FactLogin || k == FactUsage || k == FactConsent
}

// consentFor returns the consent to cite for policy keys containing one of
// words: the latest before the charge, else the latest on record.
func (ev *caseEvidence) consentFor(words ...string) (Fact, PolicyDocument, bool) {
	var best *Fact
	at := ev.chargeTime()
	for i, f := range ev.Facts {
		if f.Kind != FactConsent || f.Policy == nil {
			continue
		}
		key := strings.ToLower(f.Policy.Key)
		if !slices.ContainsFunc(words, func(w string) bool { return strings.Contains(key, w) }) {
			continue
		}
		if best == nil || (!f.OccurredAt.After(at) || best.OccurredAt.After(at)) {
			best = &ev.Facts[i]
		}
	}
	if best == nil {
		return Fact{}, PolicyDocument{}, false
	}
	return *best, ev.Policies[*best.Policy], true
}

// duplicateOf finds another succeeded charge of the customer with the same
// amount and currency as the disputed one, nearest in time.
func (ev *caseEvidence) duplicateOf() (billing.Charge, bool) {
	var best billing.Charge
	found := false
	at := ev.chargeTime()
	for _, c := range ev.Charges {
		if c.ID == ev.Charge.ID || c.ID == ev.Dispute.ChargeID || c.Amount != ev.Dispute.Amount || c.Currency != ev.Dispute.Currency || !c.Paid {
			continue
		}
		if !found || absDur(c.Created.Sub(at)) < absDur(best.Created.Sub(at)) {
			best, found = c, true
		}
	}
	return best, found
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// cancellationBefore returns when the subscription was canceled (or set to
// cancel) before the charge, if it was (a cancellation caused by the
// dispute itself does not count).
func (ev *caseEvidence) cancellationBefore() (time.Time, bool) {
	s, ok := ev.subscription()
	if !ok || s.CanceledAt == nil || s.CancellationReason == "payment_disputed" {
		return time.Time{}, false
	}
	if s.CanceledAt.Before(ev.chargeTime()) {
		return *s.CanceledAt, true
	}
	return time.Time{}, false
}

// cancellationMessages returns communications before the charge that speak
// of cancelling (a person should read them).
func (ev *caseEvidence) cancellationMessages() []Fact {
	var out []Fact
	for _, f := range ev.factsOf(FactCommunication) {
		if f.OccurredAt.Before(ev.chargeTime()) && strings.Contains(strings.ToLower(string(f.Data)), "cancel") &&
			!strings.EqualFold(dataField(f.Data, "direction"), "outbound") {
			out = append(out, f)
		}
	}
	return out
}

// wants reports whether the dispute's checklist asks for field f: the
// reason-specific fields (cancellation, refund, duplicate) are filled only
// for the disputes that call for them.
func (ev *caseEvidence) wants(f EvidenceField) bool {
	_, ok := ev.Checklist.Item(f)
	return ok
}

// servicePeriod is the period the disputed charge paid for.
func (ev *caseEvidence) servicePeriod() (time.Time, time.Time, bool) {
	start := ev.chargeTime()
	s, ok := ev.subscription()
	if !ok {
		return start, time.Time{}, false
	}
	switch s.Interval {
	case "day":
		return start, start.AddDate(0, 0, 1), true
	case "week":
		return start, start.AddDate(0, 0, 7), true
	case "month":
		return start, start.AddDate(0, 1, 0), true
	case "year":
		return start, start.AddDate(1, 0, 0), true
	}
	return start, time.Time{}, false
}

// assembly is what Assemble builds: the text fields, the letter and the
// exhibits of the packet.
type assembly struct {
	Fields   map[string]string
	Letter   letter
	Exhibits []exhibit
}

// assemble builds the evidence of one dispute case from what the workbench
// knows of it. It reads nothing but ev.
func assemble(ev *caseEvidence) assembly {
	a := assembly{Fields: map[string]string{}}
	exhibits := ev.exhibits()
	num := map[string]int{}
	for i := range exhibits {
		exhibits[i].Number = i + 1
		num[exhibits[i].Key] = i + 1
	}
	a.Exhibits = exhibits
	cite := func(keys ...string) []int {
		var out []int
		for _, k := range keys {
			if n := num[k]; n > 0 {
				out = append(out, n)
			}
		}
		slices.Sort(out)
		return out
	}
	see := func(keys ...string) string {
		if c := citation(cite(keys...)); c != "" {
			return " (see " + c + " of the rebuttal packet)"
		}
		return ""
	}
	f := a.Fields
	d := ev.Dispute
	at := ev.chargeTime()

	if n := strings.TrimSpace(ev.Customer.Name); n != "" {
		f[string(FieldCustomerName)] = clean(n)
	}
	if e := strings.TrimSpace(ev.Customer.Email); e != "" {
		f[string(FieldCustomerEmailAddress)] = clean(e)
	}
	if ip, _ := ev.purchaseIP(); ip != "" {
		f[string(FieldCustomerPurchaseIP)] = ip
	}

	// Access activity log, time-ordered.
	shown, omitted := ev.activityWindow()
	if len(shown) > 0 {
		all := ev.factsOf(FactSignup, FactLogin, FactUsage)
		from := at.Add(-purchaseIPWithin)
		recent := len(all) - sort.Search(len(all), func(i int) bool { return !all[i].OccurredAt.Before(from) })
		var b strings.Builder
		fmt.Fprintf(&b, "The disputed charge was made %s. From 30 days before it to %s: %s, %d of them after the charge. In time order (UTC):\n",
			ts(at), day(all[len(all)-1].OccurredAt), sessions(recent), len(ev.activityAfter(at)))
		for _, fa := range shown {
			b.WriteString(factLine(fa) + "\n")
		}
		if omitted > 0 {
			fmt.Fprintf(&b, "%d further entries are on record and available on request.\n", omitted)
		}
		f[string(FieldAccessActivityLog)] = truncateRunes(b.String(), MaxLongTextChars)
	}

	sub, hasSub := ev.subscription()
	if hasSub {
		desc := fmt.Sprintf("Subscription %s to product %s (price %s): %s per %s, a digital service used online; nothing was shipped. Subscribed %s; status %s.",
			sub.ID, orUnknown(sub.ProductID), orUnknown(sub.PriceID), money(sub.Amount, sub.Currency), orUnknown(sub.Interval), day(sub.Created), sub.Status)
		f[string(FieldProductDescription)] = clean(desc)
	}
	if start, end, ok := ev.servicePeriod(); ok {
		f[string(FieldServiceDate)] = fmt.Sprintf("%s to %s", day(start), day(end))
	} else {
		f[string(FieldServiceDate)] = day(start)
	}

	// Cancellation.
	consent, doc, hasConsent := ev.consentFor("cancel", "terms")
	notices := ev.noticesBefore(at)
	after := ev.activityAfter(at)
	canceledAt, canceledBefore := ev.cancellationBefore()
	if hasConsent && ev.wants(FieldCancellationPolicyDisclosure) {
		f[string(FieldCancellationPolicyDisclosure)] = clean(fmt.Sprintf("The customer accepted our %s (policy %q, version %s%s) on %s from IP %s%s, before the charge of %s.%s",
			policyWords(consent.Policy.Key), consent.Policy.Key, consent.Policy.Version, titleSuffix(doc), ts(consent.OccurredAt),
			orUnknown(consent.IP), flowSuffix(consent), day(at), see("consent")))
	}
	if ev.wants(FieldCancellationRebuttal) {
		var b strings.Builder
		if canceledBefore {
			fmt.Fprintf(&b, "Our records show the subscription was canceled on %s, before the charge of %s; this needs review before the dispute is contested. ", ts(canceledAt), day(at))
		} else {
			fmt.Fprintf(&b, "No cancellation request is on record before the charge of %s on %s. ", money(d.Amount, d.Currency), ts(at))
			if hasSub && sub.CanceledAt != nil {
				fmt.Fprintf(&b, "The subscription was canceled only on %s, after the charge. ", ts(*sub.CanceledAt))
			}
		}
		if hasConsent {
			fmt.Fprintf(&b, "The customer accepted the %s, policy %q version %s, on %s. ", policyWords(consent.Policy.Key), consent.Policy.Key, consent.Policy.Version, day(consent.OccurredAt))
		}
		if len(notices) > 0 {
			b.WriteString("Before the charge we sent: ")
			for i, n := range notices {
				if i > 0 {
					b.WriteString("; ")
				}
				b.WriteString(noticeWords(n))
			}
			b.WriteString(". ")
		}
		if len(after) > 0 {
			fmt.Fprintf(&b, "After the charge the customer kept using the service: %s, the last on %s from IP %s.",
				sessions(len(after)), ts(after[len(after)-1].OccurredAt), orUnknown(after[len(after)-1].IP))
		}
		b.WriteString(see("consent", "notices", "access_log", "history"))
		f[string(FieldCancellationRebuttal)] = truncateRunes(clean(b.String()), MaxLongTextChars)
	}

	// Refunds.
	refundConsent, refundDoc, hasRefundConsent := ev.consentFor("refund")
	if hasRefundConsent && ev.wants(FieldRefundPolicyDisclosure) {
		f[string(FieldRefundPolicyDisclosure)] = clean(fmt.Sprintf("The customer accepted our refund policy (policy %q, version %s%s) on %s from IP %s%s.%s",
			refundConsent.Policy.Key, refundConsent.Policy.Version, titleSuffix(refundDoc), ts(refundConsent.OccurredAt), orUnknown(refundConsent.IP), flowSuffix(refundConsent), see("consent")))
	}
	chargeRefunds := ev.refundsOf(d.ChargeID)
	if ev.wants(FieldRefundRefusalExplanation) || len(chargeRefunds) > 0 {
		var b strings.Builder
		if len(chargeRefunds) > 0 {
			b.WriteString("Refunds already issued on this charge: ")
			for i, r := range chargeRefunds {
				if i > 0 {
					b.WriteString("; ")
				}
				fmt.Fprintf(&b, "%s of %s on %s (%s)", r.ID, money(r.Amount, r.Currency), day(r.Created), r.Status)
			}
			b.WriteString(". ")
		} else {
			fmt.Fprintf(&b, "No refund is owed: no refund of the charge of %s was issued, and ", day(at))
			if len(ev.refundRequests()) == 0 {
				b.WriteString("no refund request is on record. ")
			} else {
				b.WriteString("the refund request on record was answered under the refund policy the customer accepted. ")
			}
		}
		if len(after) > 0 {
			fmt.Fprintf(&b, "The customer used the service during the period charged (%s after the charge). ", sessions(len(after)))
		}
		b.WriteString(see("refunds", "consent", "access_log"))
		f[string(FieldRefundRefusalExplanation)] = truncateRunes(clean(b.String()), MaxLongTextChars)
	}

	// Duplicate.
	if dup, ok := ev.duplicateOf(); ok && ev.wants(FieldDuplicateChargeID) {
		f[string(FieldDuplicateChargeID)] = dup.ID
		f[string(FieldDuplicateChargeExplanation)] = clean(fmt.Sprintf("Charge %s (%s on %s) and the disputed charge %s (%s on %s) are not duplicates: %s%s",
			dup.ID, money(dup.Amount, dup.Currency), day(dup.Created), d.ChargeID, money(d.Amount, d.Currency), day(at),
			ev.duplicateReason(dup), see("history")))
	}

	a.Letter = ev.letter(cite, shown, notices, after, hasConsent, consent, canceledBefore)
	f[string(FieldUncategorizedText)] = truncateRunes(clean(a.Letter.text()), MaxLongTextChars)
	for k, v := range f {
		if strings.TrimSpace(v) == "" {
			delete(f, k)
		}
	}
	return a
}

func (ev *caseEvidence) duplicateReason(dup billing.Charge) string {
	invOf := func(id string) (billing.Invoice, bool) {
		for _, inv := range ev.Invoices {
			if inv.ID == id {
				return inv, true
			}
		}
		return billing.Invoice{}, false
	}
	a, okA := invOf(dup.InvoiceID)
	b, okB := invOf(ev.Charge.InvoiceID)
	switch {
	case okA && okB && a.ID != b.ID:
		return fmt.Sprintf("each paid its own invoice (%s, %s; %s, %s) for a different billing period of the subscription.", a.ID, day(a.Created), b.ID, day(b.Created))
	case dup.Refunded:
		return "the other charge was refunded, so the customer paid once."
	default:
		return fmt.Sprintf("they were made %s apart, each for its own billing period.", humanDays(absDur(ev.chargeTime().Sub(dup.Created))))
	}
}

// sessions counts sign-ins and sessions in words.
func sessions(n int) string {
	if n == 1 {
		return "1 sign-in or session"
	}
	return fmt.Sprintf("%d sign-ins or sessions", n)
}

func capitalizeFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func humanDays(d time.Duration) string {
	days := int(d.Hours() / 24)
	if days == 1 {
		return "1 day"
	}
	return fmt.Sprintf("%d days", days)
}

func orUnknown(s string) string {
	if strings.TrimSpace(s) == "" {
		return "unknown"
	}
	return s
}

func policyWords(key string) string {
	k := strings.ToLower(key)
	switch {
	case strings.Contains(k, "cancel"):
		return "cancellation policy"
	case strings.Contains(k, "refund"):
		return "refund policy"
	case strings.Contains(k, "terms"):
		return "terms of service (which include the cancellation terms)"
	}
	return key + " policy"
}

func titleSuffix(doc PolicyDocument) string {
	if doc.Title == "" {
		return ""
	}
	return ", \"" + doc.Title + "\""
}

func flowSuffix(f Fact) string {
	if flow := dataField(f.Data, "flow"); flow != "" {
		return " in the " + flow + " flow"
	}
	if cb := dataField(f.Data, "checkbox"); cb != "" {
		return " (checkbox " + cb + ")"
	}
	return ""
}

func noticeWords(n Fact) string {
	what := n.Template
	if what == "" {
		what = orUnknown(dataField(n.Data, "type"))
	}
	ch := n.Channel
	if ch == "" {
		ch = "unknown channel"
	}
	return fmt.Sprintf("%s by %s on %s", what, ch, day(n.OccurredAt))
}

func (ev *caseEvidence) noticesBefore(at time.Time) []Fact {
	var out []Fact
	for _, f := range ev.factsOf(FactNotice) {
		if f.OccurredAt.Before(at) {
			out = append(out, f)
		}
	}
	if len(out) > 5 {
		out = out[len(out)-5:]
	}
	return out
}

func (ev *caseEvidence) activityAfter(at time.Time) []Fact {
	all := ev.factsOf(FactLogin, FactUsage)
	i := sort.Search(len(all), func(i int) bool { return !all[i].OccurredAt.Before(at) })
	return all[i:]
}

func (ev *caseEvidence) refundsOf(chargeID string) []billing.Refund {
	var out []billing.Refund
	for _, r := range ev.Refunds {
		if r.ChargeID == chargeID {
			out = append(out, r)
		}
	}
	return out
}

func (ev *caseEvidence) refundRequests() []Fact {
	var out []Fact
	for _, f := range ev.factsOf(FactCommunication) {
		if strings.Contains(strings.ToLower(string(f.Data)), "refund") {
			out = append(out, f)
		}
	}
	return out
}

// exhibits builds the packet's exhibits that have content, in a fixed order.
func (ev *caseEvidence) exhibits() []exhibit {
	var out []exhibit
	at := ev.chargeTime()
	if shown, omitted := ev.activityWindow(); len(shown) > 0 {
		t := &exhibitTable{Header: []string{"When (UTC)", "What", "IP", "Device", "Account"}, Widths: []float64{42, 20, 38, 40, 35.9}, Omitted: omitted}
		for _, f := range shown {
			dev := f.DeviceID
			if dev == "" {
				dev = f.DeviceFingerprint
			}
			t.Rows = append(t.Rows, []string{ts(f.OccurredAt), string(f.Kind), f.IP, clean(dev), clean(f.AccountID)})
		}
		after := ev.activityAfter(at)
		out = append(out, exhibit{Key: "access_log", Title: "Access activity log",
			Proves:     "the customer's own account was used from the same networks and devices before and after the disputed charge.",
			Paragraphs: []string{fmt.Sprintf("The disputed charge was made %s. %s followed it.", ts(at), capitalizeFirst(sessions(len(after))))},
			Table:      t})
	}
	var consentParas []string
	seen := map[PolicyRef]bool{}
	for _, f := range ev.factsOf(FactConsent) {
		if f.Policy == nil || seen[*f.Policy] {
			continue
		}
		seen[*f.Policy] = true
		p := fmt.Sprintf("%s: accepted policy %q version %s from IP %s%s%s.", ts(f.OccurredAt), f.Policy.Key, f.Policy.Version, orUnknown(f.IP), flowSuffix(f), deviceSuffix(f))
		consentParas = append(consentParas, clean(p))
		if doc, ok := ev.Policies[*f.Policy]; ok && strings.TrimSpace(doc.Body) != "" {
			consentParas = append(consentParas, clean(fmt.Sprintf("Excerpt of %q (version %s, in effect from %s): %s", orTitle(doc), doc.Version, day(doc.EffectiveAt), truncateRunes(doc.Body, maxPolicyExcerpt))))
		}
		if len(seen) >= 3 {
			break
		}
	}
	if len(consentParas) > 0 {
		out = append(out, exhibit{Key: "consent", Title: "Consent record and policy text",
			Proves: "the customer saw and accepted these terms, in this version, before paying.", Paragraphs: consentParas})
	}
	if ns := ev.factsOf(FactNotice); len(ns) > 0 {
		t := &exhibitTable{Header: []string{"Sent (UTC)", "Channel", "Notice"}, Widths: []float64{45, 30, 100.9}}
		start := max(0, len(ns)-maxNoticeRows)
		t.Omitted = start
		for _, n := range ns[start:] {
			what := n.Template
			if d := dataText(n.Data); d != "" {
				what = strings.TrimSpace(what + " " + d)
			}
			t.Rows = append(t.Rows, []string{ts(n.OccurredAt), n.Channel, clean(what)})
		}
		out = append(out, exhibit{Key: "notices", Title: "Notices sent",
			Proves: "the customer was told in advance of each renewal and of the terms, through the channels on record.", Table: t})
	}
	if cs := ev.factsOf(FactCommunication); len(cs) > 0 {
		var paras []string
		start := max(0, len(cs)-maxCommEntries)
		for _, c := range cs[start:] {
			head := fmt.Sprintf("%s, %s", ts(c.OccurredAt), orUnknown(c.Channel))
			if dir := dataField(c.Data, "direction"); dir != "" {
				head += ", " + dir
			}
			if subj := dataField(c.Data, "subject"); subj != "" {
				head += ": " + subj
			}
			body := dataField(c.Data, "body")
			if body == "" {
				body = dataText(c.Data)
			}
			paras = append(paras, clean(head)+"\n"+truncateRunes(body, maxCommChars))
		}
		if start > 0 {
			paras = append(paras, fmt.Sprintf("%d earlier messages are on record and available on request.", start))
		}
		out = append(out, exhibit{Key: "communications", Title: "Communications with the customer",
			Proves: "what the customer told us and what we answered, in their own words and ours.", Paragraphs: paras})
	}
	if ds := ev.factsOf(FactDelivery); len(ds) > 0 {
		t := &exhibitTable{Header: []string{"When (UTC)", "Delivery"}, Widths: []float64{45, 130.9}}
		start := max(0, len(ds)-maxDeliveryRows)
		t.Omitted = start
		for _, d := range ds[start:] {
			t.Rows = append(t.Rows, []string{ts(d.OccurredAt), dataText(d.Data)})
		}
		out = append(out, exhibit{Key: "delivery", Title: "Service delivery records",
			Proves: "the service the customer paid for was provided to their account.", Table: t})
	}
	if len(ev.Refunds) > 0 {
		t := &exhibitTable{Header: []string{"Refund", "Charge", "Amount", "Date", "Status"}, Widths: []float64{45, 45, 30, 28, 27.9}}
		for _, r := range ev.Refunds {
			t.Rows = append(t.Rows, []string{r.ID, r.ChargeID, money(r.Amount, r.Currency), day(r.Created), r.Status})
		}
		out = append(out, exhibit{Key: "refunds", Title: "Refund history",
			Proves: "every refund issued to this customer, so none is claimed twice.", Table: t})
	}
	if len(ev.Charges) > 0 || len(ev.Subs) > 0 {
		var paras []string
		for _, s := range ev.Subs {
			line := fmt.Sprintf("Subscription %s: %s per %s, created %s, status %s", s.ID, money(s.Amount, s.Currency), orUnknown(s.Interval), day(s.Created), s.Status)
			if s.CanceledAt != nil {
				line += fmt.Sprintf(", canceled %s (%s)", day(*s.CanceledAt), orUnknown(s.CancellationReason))
			}
			paras = append(paras, line+".")
		}
		t := &exhibitTable{Header: []string{"Date", "Charge", "Invoice", "Amount", "Status"}, Widths: []float64{26, 48, 48, 28, 25.9}}
		start := max(0, len(ev.Charges)-maxHistoryRows)
		t.Omitted = start
		for _, c := range ev.Charges[start:] {
			status := c.Status
			switch {
			case c.ID == ev.Dispute.ChargeID:
				status = "disputed"
			case c.Refunded:
				status = "refunded"
			case c.Disputed:
				status = "disputed"
			}
			t.Rows = append(t.Rows, []string{day(c.Created), c.ID, orUnknown(c.InvoiceID), money(c.Amount, c.Currency), status})
		}
		out = append(out, exhibit{Key: "history", Title: "Subscription, invoice and payment history",
			Proves:     "the customer's billing relationship: what was charged, when, for which invoice, and which payments went undisputed.",
			Paragraphs: paras, Table: t})
	}
	if len(ev.Billing) > 0 {
		t := &exhibitTable{Header: []string{"When (UTC)", "Event"}, Widths: []float64{42, 133.9}}
		for _, e := range ev.Billing {
			t.Rows = append(t.Rows, []string{ts(e.At), clean(e.Summary)})
		}
		out = append(out, exhibit{Key: "billing_events", Title: "Billing events recorded by the payment processor",
			Proves: "the subscription's billing history as Stripe recorded it: sign-up, renewals, payments and any cancellation, with dates.", Table: t})
	}
	return out
}

func deviceSuffix(f Fact) string {
	if f.DeviceID != "" {
		return ", device " + f.DeviceID
	}
	if f.DeviceFingerprint != "" {
		return ", device fingerprint " + f.DeviceFingerprint
	}
	return ""
}

func orTitle(doc PolicyDocument) string {
	if doc.Title != "" {
		return doc.Title
	}
	return doc.Key
}

// letter writes page 1 of the packet.
func (ev *caseEvidence) letter(cite func(...string) []int, shown, notices, after []Fact, hasConsent bool, consent Fact, canceledBefore bool) letter {
	d := ev.Dispute
	at := ev.chargeTime()
	brand := NormalizeBrand(firstNonEmpty(d.CardBrand, ev.Charge.CardBrand))
	reasonLine := fmt.Sprintf("Reason: %s", d.Reason)
	if d.NetworkReasonCode != "" {
		reasonLine += fmt.Sprintf(" (%s %s: %s)", brandTitle(brand), d.NetworkReasonCode, CodeMeaning(brand, d.NetworkReasonCode, d.Reason))
	}
	card := brandTitle(brand)
	if ev.Charge.CardLast4 != "" {
		card += " ending " + ev.Charge.CardLast4
	}
	l := letter{
		Title: fmt.Sprintf("Response to dispute %s", d.ID),
		Identifiers: []string{
			fmt.Sprintf("Dispute: %s    Charge: %s", d.ID, d.ChargeID),
			fmt.Sprintf("Amount: %s    Charge date: %s    Card: %s", money(d.Amount, d.Currency), day(at), card),
			reasonLine,
		},
		Request: fmt.Sprintf("The charge was authorised and the service was provided as agreed. We ask the issuer to reverse chargeback %s and reinstate %s.", d.ID, money(d.Amount, d.Currency)),
	}
	name := orUnknown(firstNonEmpty(ev.Customer.Name, ev.Customer.Email))
	l.Transaction = append(l.Transaction, fmt.Sprintf("Customer: %s (%s), customer id %s, since %s.", name, orUnknown(ev.Customer.Email), ev.Customer.ID, day(ev.Customer.Created)))
	if s, ok := ev.subscription(); ok {
		l.Transaction = append(l.Transaction, fmt.Sprintf("Subscription %s: %s per %s, product %s, started %s.", s.ID, money(s.Amount, s.Currency), orUnknown(s.Interval), orUnknown(s.ProductID), day(s.Created)))
	}
	if start, end, ok := ev.servicePeriod(); ok {
		l.Transaction = append(l.Transaction, fmt.Sprintf("The disputed charge paid for the service from %s to %s.", day(start), day(end)))
	}
	usedAfter := func() letterPoint {
		last := after[len(after)-1]
		return letterPoint{Text: fmt.Sprintf("The customer kept using the service after the charge: %s, the last on %s from IP %s.", sessions(len(after)), day(last.OccurredAt), orUnknown(last.IP)),
			Exhibits: cite("access_log")}
	}
	consentPoint := func() letterPoint {
		return letterPoint{Text: fmt.Sprintf("The customer accepted our %s (policy %q, version %s) on %s, before paying.", policyWords(consent.Policy.Key), consent.Policy.Key, consent.Policy.Version, day(consent.OccurredAt)),
			Exhibits: cite("consent")}
	}
	priorPaid := 0
	for _, c := range ev.Charges {
		if c.Paid && !c.Disputed && c.Created.Before(at) && c.ID != d.ChargeID && c.CardFingerprint != "" && c.CardFingerprint == ev.Charge.CardFingerprint {
			priorPaid++
		}
	}
	switch ev.Checklist.Reason {
	case ReasonSubscriptionCanceled:
		l.Position = "The customer had not canceled when the renewal was charged; the charge follows the subscription terms they accepted."
		if canceledBefore {
			l.Position = "Our records show a cancellation before the charge; this response is a draft for review."
		}
		if hasConsent {
			l.Points = append(l.Points, consentPoint())
		}
		if !canceledBefore {
			l.Points = append(l.Points, letterPoint{Text: fmt.Sprintf("No cancellation request is on record before the charge on %s.", day(at)), Exhibits: cite("history", "billing_events", "communications")})
		}
		if len(notices) > 0 {
			l.Points = append(l.Points, letterPoint{Text: fmt.Sprintf("We notified the customer before the renewal: %s.", noticeWords(notices[len(notices)-1])), Exhibits: cite("notices")})
		}
		if len(after) > 0 {
			l.Points = append(l.Points, usedAfter())
		}
	case ReasonFraudulent, ReasonUnrecognized:
		l.Position = "The cardholder made this payment: it came from the customer's own account, network and device, and the account kept being used after it."
		if ip, f := ev.purchaseIP(); ip != "" && f != nil {
			l.Points = append(l.Points, letterPoint{Text: fmt.Sprintf("The purchase came from IP %s, the customer's own sign-in on %s%s.", ip, day(f.OccurredAt), deviceSuffix(*f)), Exhibits: cite("access_log")})
		}
		if len(after) > 0 {
			l.Points = append(l.Points, usedAfter())
		}
		if priorPaid > 0 {
			l.Points = append(l.Points, letterPoint{Text: fmt.Sprintf("The same card paid %d earlier charges of this account that were never disputed.", priorPaid), Exhibits: cite("history")})
		}
		if hasConsent {
			l.Points = append(l.Points, consentPoint())
		}
	case ReasonCreditNotProcessed, ReasonProductUnacceptable:
		l.Position = "No refund is owed under the refund terms the customer accepted, and the service was provided as described."
		if refunds := ev.refundsOf(d.ChargeID); len(refunds) > 0 {
			l.Position = "The refund the customer asks for was already issued."
			l.Points = append(l.Points, letterPoint{Text: fmt.Sprintf("Refund %s of %s was issued on %s.", refunds[0].ID, money(refunds[0].Amount, refunds[0].Currency), day(refunds[0].Created)), Exhibits: cite("refunds")})
		}
		if c, _, ok := ev.consentFor("refund"); ok {
			l.Points = append(l.Points, letterPoint{Text: fmt.Sprintf("The customer accepted our refund policy (version %s) on %s.", c.Policy.Version, day(c.OccurredAt)), Exhibits: cite("consent")})
		}
		if len(after) > 0 {
			l.Points = append(l.Points, usedAfter())
		}
	case ReasonDuplicate:
		l.Position = "The charges are not duplicates: each paid its own billing period."
		if dup, ok := ev.duplicateOf(); ok && ev.wants(FieldDuplicateChargeID) {
			l.Points = append(l.Points, letterPoint{Text: fmt.Sprintf("Charge %s (%s) and this charge (%s) paid different invoices.", dup.ID, day(dup.Created), day(at)), Exhibits: cite("history")})
		}
	case ReasonProductNotReceived:
		l.Position = "The service was delivered: the customer's account had access and used it during the period paid for."
		if len(ev.factsOf(FactDelivery)) > 0 {
			l.Points = append(l.Points, letterPoint{Text: "Access to the service was provisioned to the customer's account.", Exhibits: cite("delivery")})
		}
		if len(after) > 0 {
			l.Points = append(l.Points, usedAfter())
		}
	default:
		l.Position = "The charge is valid: the customer subscribed, was billed as agreed and used the service."
		if hasConsent {
			l.Points = append(l.Points, consentPoint())
		}
		if len(after) > 0 {
			l.Points = append(l.Points, usedAfter())
		}
	}
	if len(l.Points) == 0 {
		l.Points = append(l.Points, letterPoint{Text: "The customer's billing history with us is attached.", Exhibits: cite("history")})
	}
	if len(l.Points) > 5 {
		l.Points = l.Points[:5]
	}
	for _, ex := range ev.exhibitsTitles(cite) {
		l.Exhibits = append(l.Exhibits, ex)
	}
	return l
}

// exhibitsTitles lists the exhibits as the letter names them.
func (ev *caseEvidence) exhibitsTitles(cite func(...string) []int) []string {
	var out []string
	for _, k := range []struct{ key, title string }{
		{"access_log", "Access activity log"}, {"consent", "Consent record and policy text"}, {"notices", "Notices sent"},
		{"communications", "Communications with the customer"}, {"delivery", "Service delivery records"},
		{"refunds", "Refund history"}, {"history", "Subscription, invoice and payment history"},
		{"billing_events", "Billing events recorded by the payment processor"},
	} {
		if n := cite(k.key); len(n) > 0 {
			out = append(out, fmt.Sprintf("Exhibit %d: %s", n[0], k.title))
		}
	}
	return out
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if strings.TrimSpace(v) != "" {
			return v
		}
	}
	return ""
}

func brandTitle(brand string) string {
	switch brand {
	case BrandVisa:
		return "Visa"
	case BrandMastercard:
		return "Mastercard"
	case BrandAmex:
		return "American Express"
	case BrandDiscover:
		return "Discover"
	case "":
		return "Card"
	}
	return strings.ToUpper(brand[:1]) + brand[1:]
}
