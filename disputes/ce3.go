package disputes

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode"
)

// Visa CE 3.0 window and Stripe's minimum identifier lengths.
const (
	// CE3MinDays and CE3MaxDays bound, in calendar days (UTC) before the
	// disputed charge, when a qualifying prior charge was made, inclusive.
	CE3MinDays = 120
	CE3MaxDays = 365
	// CE3MinPriors is how many qualifying prior charges Visa requires (and
	// exactly how many Stripe's API takes).
	CE3MinPriors = 2
	// minDeviceFingerprintChars and minDeviceIDChars are Stripe's minimum
	// lengths for customer_device_fingerprint and customer_device_id in CE
	// 3.0 evidence; shorter values are not accepted, so they do not count.
	minDeviceFingerprintChars = 20
	minDeviceIDChars          = 15
)

// Address is a postal address as Stripe's CE 3.0 shipping_address takes it.
type Address struct {
	Line1      string `json:"line1"`
	Line2      string `json:"line2"`
	City       string `json:"city"`
	State      string `json:"state"`
	PostalCode string `json:"postal_code"`
	Country    string `json:"country"` // ISO 3166-1 alpha-2
}

// Payment is one card payment as Visa CE 3.0 looks at it: the disputed
// charge or a prior charge of the same customer. The identifiers are those
// captured at purchase time; empty means not captured.
type Payment struct {
	// ChargeID is the Stripe charge id (ch_…).
	ChargeID string `json:"charge"`
	// Created is when the charge was made.
	Created time.Time `json:"created"`
	// CardBrand is the card's brand as Stripe names it (visa, …).
	CardBrand string `json:"card_brand"`
	// CardFingerprint identifies the card (payment credential) without
	// revealing it; prior charges must share the disputed charge's.
	CardFingerprint string `json:"card_fingerprint"`
	// NetworkReasonCode is the dispute's network reason code (disputed
	// charge only; CE 3.0 applies to Visa 10.4).
	NetworkReasonCode string `json:"network_reason_code,omitempty"`
	// Paid is true when the charge succeeded and was paid.
	Paid bool `json:"paid"`
	// Disputed is true when the charge was ever disputed (inquiries too).
	Disputed bool `json:"disputed"`
	// FraudReported is true when fraud was reported on the charge (a Radar
	// early fraud warning, i.e. an issuer fraud report).
	FraudReported bool `json:"fraud_reported"`

	// Main identifiers: the purchase IP and the device. A device matches
	// when either the fingerprint or the device id matches.
	PurchaseIP        string `json:"customer_purchase_ip"`
	DeviceFingerprint string `json:"customer_device_fingerprint"`
	DeviceID          string `json:"customer_device_id"`

	// Secondary identifiers.
	ShippingAddress Address `json:"shipping_address"`
	// Email is the customer's email address at purchase time.
	Email string `json:"customer_email_address"`
	// AccountID is the customer's account or login id on our platform (the
	// one they would recognise), e.g. the Recourse/Stripe customer id.
	AccountID string `json:"customer_account_id"`

	// ProductDescription is what the charge paid for; Stripe's CE 3.0
	// payload carries it. It plays no part in eligibility.
	ProductDescription string `json:"product_description,omitempty"`
}

// CE3Identifier names an identifier that CE 3.0 matches on.
type CE3Identifier string

// CE 3.0 identifiers, in the order results list them.
const (
	CE3PurchaseIP      CE3Identifier = "purchase_ip"      // main
	CE3Device          CE3Identifier = "device"           // main: fingerprint or device id
	CE3AccountID       CE3Identifier = "account_id"       // secondary
	CE3Email           CE3Identifier = "email"            // secondary
	CE3ShippingAddress CE3Identifier = "shipping_address" // secondary
)

var ce3Identifiers = []CE3Identifier{CE3PurchaseIP, CE3Device, CE3AccountID, CE3Email, CE3ShippingAddress}

// Main reports whether i is a main identifier (purchase IP or device);
// the others are secondary.
func (i CE3Identifier) Main() bool { return i == CE3PurchaseIP || i == CE3Device }

func (i CE3Identifier) words() string {
	switch i {
	case CE3PurchaseIP:
		return "purchase IP"
	case CE3Device:
		return "device"
	case CE3AccountID:
		return "account id"
	case CE3Email:
		return "email"
	case CE3ShippingAddress:
		return "shipping address"
	}
	return string(i)
}

// CE3Prior is the verdict on one prior charge.
type CE3Prior struct {
	// ChargeID is the prior charge's id, as given.
	ChargeID string `json:"charge"`
	// DaysBefore is how many calendar days (UTC) before the disputed charge
	// it was made (negative when after; 0 when it has no date).
	DaysBefore int `json:"days_before"`
	// Matches are the identifiers it shares with the disputed charge.
	Matches []CE3Identifier `json:"matches"`
	// Qualifies is true when it meets every condition on its own.
	Qualifies bool `json:"qualifies"`
	// Why says, in words, why it qualifies or every reason it does not.
	Why string `json:"why"`
}

// CE3Result is the Visa CE 3.0 verdict on a disputed charge.
type CE3Result struct {
	// Eligible is true when two prior charges qualify together.
	Eligible bool `json:"eligible"`
	// Summary says in one or two sentences why it is eligible or not.
	Summary string `json:"summary"`
	// Selected holds the two prior charges to submit when eligible.
	Selected []string `json:"selected"`
	// Shared are the identifiers all three transactions share (when
	// eligible).
	Shared []CE3Identifier `json:"shared"`
	// Priors holds the verdict on every prior charge given, in input order
	// (empty when the disputed charge itself rules CE 3.0 out).
	Priors []CE3Prior `json:"priors"`
}

// CE3Eligible decides whether a disputed charge qualifies for Visa
// Compelling Evidence 3.0, given the customer's earlier charges. It never
// fails: every reason it is not eligible is said in words.
//
// The rules (Visa, as Stripe documents them): the dispute is Visa reason
// code 10.4; there are at least two prior charges on the same card (card
// fingerprint), made 120 to 365 calendar days before the disputed charge
// (inclusive, counted between UTC dates), paid, never disputed and without
// a fraud report; and all three transactions match on two main identifiers
// (purchase IP; device fingerprint or device id) or on one main and one
// secondary identifier (account id, email, shipping address). The
// identifiers must be shared by all three — two priors that each match the
// disputed charge on different identifiers (or on the device, one by
// fingerprint and the other by device id) do not qualify together. When
// more than two priors qualify, Selected is the pair sharing the most
// identifiers, most recent first.
//
// Identifiers are compared normalised: IPs as addresses (IPv4-mapped IPv6
// equals IPv4), emails case-insensitively, addresses ignoring case,
// punctuation and spacing; account and device ids exactly after trimming.
// Values Stripe would not accept in CE 3.0 evidence do not count: an
// unparseable IP, a device fingerprint under 20 characters, a device id under
// 15, an address without line1 and country.
func CE3Eligible(disputed Payment, prior []Payment) CE3Result {
	if why := ce3DisputedProblem(disputed); why != "" {
		return CE3Result{Summary: "Not eligible: " + why}
	}
	want := normalizeIdentifiers(disputed)
	fingerprint := strings.TrimSpace(disputed.CardFingerprint)

	res := CE3Result{Priors: make([]CE3Prior, 0, len(prior))}
	var qualifying []int // indexes into prior
	// deviceParts holds, per prior, which device identifiers ("fp:…",
	// "id:…") matched: a pair shares the device only through a common one.
	deviceParts := map[int][]string{}
	seen := map[string]bool{}
	for i, p := range prior {
		v := CE3Prior{ChargeID: p.ChargeID}
		id := strings.TrimSpace(p.ChargeID)
		if id != "" && id == strings.TrimSpace(disputed.ChargeID) {
			v.Why = "is the disputed charge itself"
			res.Priors = append(res.Priors, v)
			continue
		}
		if id != "" && seen[id] {
			v.Why = "listed more than once; counted once"
			res.Priors = append(res.Priors, v)
			continue
		}
		if id != "" {
			seen[id] = true
		}

		var why []string
		switch fp := strings.TrimSpace(p.CardFingerprint); {
		case fp == "":
			why = append(why, "has no card fingerprint, so it cannot be shown to be the same card")
		case fp != fingerprint:
			why = append(why, "was paid with a different card")
		}
		if p.Created.IsZero() {
			why = append(why, "has no charge date")
		} else {
			v.DaysBefore = calendarDaysBetween(p.Created, disputed.Created)
			switch {
			case v.DaysBefore < 0:
				why = append(why, fmt.Sprintf("was made %s after the disputed charge", plural(int64(-v.DaysBefore), "day")))
			case v.DaysBefore < CE3MinDays:
				why = append(why, fmt.Sprintf("is only %s before the disputed charge (needs %d–%d)", plural(int64(v.DaysBefore), "day"), CE3MinDays, CE3MaxDays))
			case v.DaysBefore > CE3MaxDays:
				why = append(why, fmt.Sprintf("is %s before the disputed charge (needs %d–%d)", plural(int64(v.DaysBefore), "day"), CE3MinDays, CE3MaxDays))
			}
		}
		if !p.Paid {
			why = append(why, "was not paid")
		}
		if p.Disputed {
			why = append(why, "was disputed")
		}
		if p.FraudReported {
			why = append(why, "has a fraud report (early fraud warning)")
		}
		have := normalizeIdentifiers(p)
		v.Matches = matchIdentifiers(want, have)
		deviceParts[i] = commonDeviceParts(want[CE3Device], have[CE3Device])
		if !identifiersSuffice(v.Matches) {
			why = append(why, fmt.Sprintf("%s (needs purchase IP or device plus one more)", describeMatches(v.Matches)))
		}

		if len(why) == 0 {
			v.Qualifies = true
			v.Why = fmt.Sprintf("qualifies: same card, %s before, paid, undisputed, %s", plural(int64(v.DaysBefore), "day"), describeMatches(v.Matches))
			qualifying = append(qualifying, i)
		} else {
			v.Why = strings.Join(why, "; ")
		}
		res.Priors = append(res.Priors, v)
	}

	if len(prior) == 0 {
		res.Summary = fmt.Sprintf("Not eligible: no prior charges; Visa needs %d on the same card, %d–%d days before the disputed one.", CE3MinPriors, CE3MinDays, CE3MaxDays)
		return res
	}
	switch len(qualifying) {
	case 0:
		res.Summary = fmt.Sprintf("Not eligible: none of the %s qualifies; Visa needs %d.", plural(int64(len(prior)), "prior charge"), CE3MinPriors)
		return res
	case 1:
		res.Summary = fmt.Sprintf("Not eligible: only %s qualifies; Visa needs %d.", prior[qualifying[0]].ChargeID, CE3MinPriors)
		return res
	}

	// Most recent first, then by charge id, so the choice is stable.
	slices.SortStableFunc(qualifying, func(a, b int) int {
		if c := prior[b].Created.Compare(prior[a].Created); c != 0 {
			return c
		}
		return strings.Compare(prior[a].ChargeID, prior[b].ChargeID)
	})
	matchesOf := func(i int) []CE3Identifier { return res.Priors[i].Matches }
	bestA, bestB, bestShared := -1, -1, []CE3Identifier(nil)
	for x := 0; x < len(qualifying); x++ {
		for y := x + 1; y < len(qualifying); y++ {
			a, b := qualifying[x], qualifying[y]
			shared := intersectIdentifiers(matchesOf(a), matchesOf(b))
			if len(intersectStrings(deviceParts[a], deviceParts[b])) == 0 {
				// Matched the disputed device by different parts (one by
				// fingerprint, one by device id): not the same device value.
				shared = slices.DeleteFunc(shared, func(id CE3Identifier) bool { return id == CE3Device })
			}
			if identifiersSuffice(shared) && len(shared) > len(bestShared) {
				bestA, bestB, bestShared = a, b, shared
			}
		}
	}
	if bestA < 0 {
		ids := make([]string, len(qualifying))
		for i, q := range qualifying {
			ids[i] = prior[q].ChargeID
		}
		res.Summary = fmt.Sprintf("Not eligible: %s each qualify, but no two of them share with the disputed charge the same purchase IP or device plus one more identifier; Visa needs all three transactions to match on the same identifiers.",
			strings.Join(ids, ", "))
		return res
	}
	res.Eligible = true
	res.Selected = []string{prior[bestA].ChargeID, prior[bestB].ChargeID}
	res.Shared = bestShared
	res.Summary = fmt.Sprintf("Eligible: %s (%s before) and %s (%s before) share the disputed charge's %s.",
		prior[bestA].ChargeID, plural(int64(res.Priors[bestA].DaysBefore), "day"),
		prior[bestB].ChargeID, plural(int64(res.Priors[bestB].DaysBefore), "day"),
		joinIdentifiers(bestShared))
	return res
}

// ce3DisputedProblem returns why the disputed charge itself rules CE 3.0
// out, or "".
func ce3DisputedProblem(d Payment) string {
	brand, code := NormalizeBrand(d.CardBrand), NormalizeCode(d.NetworkReasonCode)
	switch {
	case brand != BrandVisa:
		if brand == "" {
			return "CE 3.0 applies to Visa reason code 10.4 only; the card brand is unknown."
		}
		return fmt.Sprintf("CE 3.0 applies to Visa reason code 10.4 only; the card brand is %s.", brand)
	case code != "10.4":
		if code == "" {
			return "CE 3.0 applies to Visa reason code 10.4 only; this dispute has no network reason code."
		}
		return fmt.Sprintf("CE 3.0 applies to Visa reason code 10.4 only; this is Visa %s.", code)
	case strings.TrimSpace(d.CardFingerprint) == "":
		return "the disputed charge has no card fingerprint, so prior charges on the same card cannot be found."
	case d.Created.IsZero():
		return "the disputed charge has no date."
	}
	ids := normalizeIdentifiers(d)
	if ids[CE3PurchaseIP] == "" && ids[CE3Device] == "" {
		return "the disputed charge has neither a usable purchase IP nor a device fingerprint or id; CE 3.0 needs one of them."
	}
	return ""
}

// normalizeIdentifiers returns p's usable identifiers, normalised; the
// device entry holds "fp:<fingerprint>" and/or "id:<device id>" joined by
// "\n" (a device matches when either part matches).
func normalizeIdentifiers(p Payment) map[CE3Identifier]string {
	ids := map[CE3Identifier]string{}
	if ip, err := netip.ParseAddr(strings.TrimSpace(p.PurchaseIP)); err == nil {
		ids[CE3PurchaseIP] = ip.Unmap().WithZone("").String()
	}
	var device []string
	if fp := strings.TrimSpace(p.DeviceFingerprint); len([]rune(fp)) >= minDeviceFingerprintChars {
		device = append(device, "fp:"+fp)
	}
	if id := strings.TrimSpace(p.DeviceID); len([]rune(id)) >= minDeviceIDChars {
		device = append(device, "id:"+id)
	}
	if len(device) > 0 {
		ids[CE3Device] = strings.Join(device, "\n")
	}
	if a := strings.TrimSpace(p.AccountID); a != "" {
		ids[CE3AccountID] = a
	}
	if e := strings.ToLower(strings.TrimSpace(p.Email)); e != "" {
		ids[CE3Email] = e
	}
	if key := addressKey(p.ShippingAddress); key != "" {
		ids[CE3ShippingAddress] = key
	}
	return ids
}

// matchIdentifiers returns the identifiers on which a and b agree, in
// ce3Identifiers order.
func matchIdentifiers(a, b map[CE3Identifier]string) []CE3Identifier {
	var out []CE3Identifier
	for _, id := range ce3Identifiers {
		va, vb := a[id], b[id]
		if va == "" || vb == "" {
			continue
		}
		if id == CE3Device {
			if len(commonDeviceParts(va, vb)) > 0 {
				out = append(out, id)
			}
			continue
		}
		if va == vb {
			out = append(out, id)
		}
	}
	return out
}

// commonDeviceParts returns the parts ("fp:…", "id:…") two device entries
// share: a device matches when they share a fingerprint or a device id.
func commonDeviceParts(a, b string) []string {
	if a == "" || b == "" {
		return nil
	}
	return intersectStrings(strings.Split(a, "\n"), strings.Split(b, "\n"))
}

// intersectStrings returns the elements of a that are also in b.
func intersectStrings(a, b []string) []string {
	var out []string
	for _, s := range a {
		if slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}

// identifiersSuffice reports whether ids meet CE 3.0's matching rule: two
// main identifiers, or one main and one secondary — i.e. at least two, at
// least one of them main.
func identifiersSuffice(ids []CE3Identifier) bool {
	return len(ids) >= 2 && slices.ContainsFunc(ids, CE3Identifier.Main)
}

// intersectIdentifiers returns the identifiers in both a and b (a's order).
func intersectIdentifiers(a, b []CE3Identifier) []CE3Identifier {
	var out []CE3Identifier
	for _, id := range a {
		if slices.Contains(b, id) {
			out = append(out, id)
		}
	}
	return out
}

// describeMatches says which identifiers match.
func describeMatches(ids []CE3Identifier) string {
	if len(ids) == 0 {
		return "matches on no identifier"
	}
	if len(ids) == 1 {
		return "matches only on " + ids[0].words()
	}
	return "matches on " + joinIdentifiers(ids)
}

// joinIdentifiers writes ids as "purchase IP, device and email".
func joinIdentifiers(ids []CE3Identifier) string {
	words := make([]string, len(ids))
	for i, id := range ids {
		words[i] = id.words()
	}
	if len(words) <= 1 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}

// addressKey normalises an address for comparison: lower case, letters and
// digits only, one space between words; "" when line1 or country is
// missing (Stripe would not accept it).
func addressKey(a Address) string {
	if strings.TrimSpace(a.Line1) == "" || strings.TrimSpace(a.Country) == "" {
		return ""
	}
	parts := []string{a.Line1, a.Line2, a.City, a.State, a.PostalCode, a.Country}
	for i, p := range parts {
		parts[i] = strings.Join(strings.FieldsFunc(strings.ToLower(p), func(r rune) bool {
			return !unicode.IsLetter(r) && !unicode.IsDigit(r)
		}), " ")
	}
	return strings.Join(parts, "|")
}

// calendarDaysBetween returns how many calendar days (UTC dates) from
// earlier to later; negative when earlier is after later.
func calendarDaysBetween(earlier, later time.Time) int {
	day := func(t time.Time) int64 {
		y, m, d := t.UTC().Date()
		return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
	}
	return int(day(later) - day(earlier))
}

// plural writes n with its unit, plural when n is not 1.
func plural(n int64, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
