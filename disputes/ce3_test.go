package disputes

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

var ce3DisputedAt = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

const (
	testCard        = "Xk2pQ9cardFingerprint"
	testIP          = "203.0.113.7"
	testDeviceFP    = "dfp_0123456789abcdef0123" // ≥ 20 characters
	testDeviceID    = "356938035643809"          // IMEI, 15 characters
	testEmail       = "ada@example.com"
	testAccount     = "cus_Q1w2e3r4"
	otherIP         = "198.51.100.9"
	otherDeviceFP   = "dfp_ffffffffffffffffffff"
	otherDeviceID   = "490154203237518"
	otherEmail      = "someone@example.org"
	otherAccount    = "cus_Z9y8x7w6"
	testProductDesc = "Pro plan, monthly"
)

var testAddress = Address{Line1: "1 Main St.", City: "Springfield", State: "IL", PostalCode: "62701", Country: "US"}

// disputedPayment is a Visa 10.4 disputed charge carrying every identifier.
func disputedPayment(mods ...func(*Payment)) Payment {
	p := Payment{
		ChargeID: "ch_disputed", Created: ce3DisputedAt, CardBrand: "visa", CardFingerprint: testCard,
		NetworkReasonCode: "10.4", Paid: true, Disputed: true,
		PurchaseIP: testIP, DeviceFingerprint: testDeviceFP, DeviceID: testDeviceID,
		Email: testEmail, AccountID: testAccount, ShippingAddress: testAddress,
		ProductDescription: testProductDesc,
	}
	for _, m := range mods {
		m(&p)
	}
	return p
}

// priorPayment is a paid, undisputed charge on the same card daysBefore
// calendar days before the disputed one, matching every identifier unless
// mods change it.
func priorPayment(id string, daysBefore int, mods ...func(*Payment)) Payment {
	p := Payment{
		ChargeID: id, Created: ce3DisputedAt.AddDate(0, 0, -daysBefore), CardBrand: "visa", CardFingerprint: testCard,
		Paid: true, PurchaseIP: testIP, DeviceFingerprint: testDeviceFP, DeviceID: testDeviceID,
		Email: testEmail, AccountID: testAccount, ShippingAddress: testAddress,
	}
	for _, m := range mods {
		m(&p)
	}
	return p
}

// only keeps the given identifiers of a payment and clears the others.
func only(ids ...CE3Identifier) func(*Payment) {
	return func(p *Payment) {
		if !slices.Contains(ids, CE3PurchaseIP) {
			p.PurchaseIP = ""
		}
		if !slices.Contains(ids, CE3Device) {
			p.DeviceFingerprint, p.DeviceID = "", ""
		}
		if !slices.Contains(ids, CE3Email) {
			p.Email = ""
		}
		if !slices.Contains(ids, CE3AccountID) {
			p.AccountID = ""
		}
		if !slices.Contains(ids, CE3ShippingAddress) {
			p.ShippingAddress = Address{}
		}
	}
}

func set(f func(*Payment)) func(*Payment) { return f }

func TestCE3Window(t *testing.T) {
	t.Parallel()
	tests := []struct {
		days     int
		eligible bool
		why      string
	}{
		{-1, false, "was made 1 day after the disputed charge"},
		{0, false, "is only 0 days before the disputed charge (needs 120–365)"},
		{1, false, "is only 1 day before"},
		{119, false, "is only 119 days before the disputed charge (needs 120–365)"},
		{120, true, "qualifies: same card, 120 days before"},
		{121, true, ""},
		{364, true, ""},
		{365, true, "qualifies: same card, 365 days before"},
		{366, false, "is 366 days before the disputed charge (needs 120–365)"},
		{730, false, "is 730 days before"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.days), func(t *testing.T) {
			t.Parallel()
			res := CE3Eligible(disputedPayment(), []Payment{priorPayment("ch_edge", tc.days), priorPayment("ch_ok", 200)})
			if res.Eligible != tc.eligible {
				t.Fatalf("eligible = %v; want %v (%s)", res.Eligible, tc.eligible, res.Summary)
			}
			v := res.Priors[0]
			if v.DaysBefore != tc.days || v.Qualifies != tc.eligible {
				t.Errorf("prior verdict %+v", v)
			}
			if tc.why != "" && !strings.Contains(v.Why, tc.why) {
				t.Errorf("why %q lacks %q", v.Why, tc.why)
			}
		})
	}
}

// TestCE3CalendarDays: the window counts calendar days (UTC dates), as
// Visa does, not 24-hour periods.
func TestCE3CalendarDays(t *testing.T) {
	t.Parallel()
	disputed := disputedPayment(set(func(p *Payment) { p.Created = time.Date(2026, 3, 10, 0, 1, 0, 0, time.UTC) }))
	late := func(id string, at time.Time) Payment {
		return priorPayment(id, 0, set(func(p *Payment) { p.Created = at }))
	}
	// 119 days and 2 minutes elapsed, but 120 calendar days.
	lo := late("ch_lo", time.Date(2025, 11, 10, 23, 59, 0, 0, time.UTC))
	// 365 days and 1 minute elapsed (more than 365×24 h), but 365 calendar days.
	hi := late("ch_hi", time.Date(2025, 3, 10, 0, 0, 0, 0, time.UTC))
	// A different zone: 2025-11-11 00:30 in UTC+2 is 2025-11-10 22:30 UTC → 120 days.
	zoned := late("ch_zoned", time.Date(2025, 11, 11, 0, 30, 0, 0, time.FixedZone("EET", 2*3600)))
	// 2025-11-11 is only 119 calendar days before.
	short := late("ch_short", time.Date(2025, 11, 11, 0, 0, 0, 0, time.UTC))
	res := CE3Eligible(disputed, []Payment{lo, hi, zoned, short})
	want := map[string]int{"ch_lo": 120, "ch_hi": 365, "ch_zoned": 120, "ch_short": 119}
	for _, v := range res.Priors {
		if v.DaysBefore != want[v.ChargeID] {
			t.Errorf("%s: %d days; want %d", v.ChargeID, v.DaysBefore, want[v.ChargeID])
		}
		if v.Qualifies != (v.ChargeID != "ch_short") {
			t.Errorf("%s qualifies = %v (%s)", v.ChargeID, v.Qualifies, v.Why)
		}
	}
	if !res.Eligible {
		t.Errorf("not eligible: %s", res.Summary)
	}
}

func TestCE3Eligible(t *testing.T) {
	t.Parallel()
	res := CE3Eligible(disputedPayment(), []Payment{
		priorPayment("ch_a", 300, only(CE3PurchaseIP, CE3Device)),
		priorPayment("ch_b", 150, only(CE3PurchaseIP, CE3Device)),
	})
	if !res.Eligible {
		t.Fatalf("not eligible: %s %+v", res.Summary, res.Priors)
	}
	if !slices.Equal(res.Selected, []string{"ch_b", "ch_a"}) {
		t.Errorf("selected %v; want most recent first", res.Selected)
	}
	if !slices.Equal(res.Shared, []CE3Identifier{CE3PurchaseIP, CE3Device}) {
		t.Errorf("shared %v", res.Shared)
	}
	want := "Eligible: ch_b (150 days before) and ch_a (300 days before) share the disputed charge's purchase IP and device."
	if res.Summary != want {
		t.Errorf("summary %q\nwant    %q", res.Summary, want)
	}
	for _, v := range res.Priors {
		if !v.Qualifies || !strings.HasPrefix(v.Why, "qualifies: same card") || !strings.Contains(v.Why, "matches on purchase IP and device") {
			t.Errorf("%+v", v)
		}
	}
}

// TestCE3Identifiers covers the matching rule: two main identifiers, or one
// main and one secondary, shared by all three transactions.
func TestCE3Identifiers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		mod      func(*Payment) // applied to both priors
		eligible bool
		shared   []CE3Identifier
		why      string // substring of the priors' Why
	}{
		{"IP and device", only(CE3PurchaseIP, CE3Device), true, []CE3Identifier{CE3PurchaseIP, CE3Device}, ""},
		{"IP and email", only(CE3PurchaseIP, CE3Email), true, []CE3Identifier{CE3PurchaseIP, CE3Email}, ""},
		{"IP and account", only(CE3PurchaseIP, CE3AccountID), true, []CE3Identifier{CE3PurchaseIP, CE3AccountID}, ""},
		{"device and shipping address", only(CE3Device, CE3ShippingAddress), true, []CE3Identifier{CE3Device, CE3ShippingAddress}, ""},
		{"everything", func(*Payment) {}, true, []CE3Identifier{CE3PurchaseIP, CE3Device, CE3AccountID, CE3Email, CE3ShippingAddress}, ""},
		{"IP only", only(CE3PurchaseIP), false, nil, "matches only on purchase IP (needs purchase IP or device plus one more)"},
		{"device only", only(CE3Device), false, nil, "matches only on device"},
		{"two secondaries", only(CE3Email, CE3AccountID), false, nil, "matches on account id and email (needs purchase IP or device plus one more)"},
		{"all three secondaries", only(CE3Email, CE3AccountID, CE3ShippingAddress), false, nil, "needs purchase IP or device"},
		{"nothing", only(), false, nil, "matches on no identifier"},
		{"different IP, same email", set(func(p *Payment) { only(CE3PurchaseIP, CE3Email)(p); p.PurchaseIP = otherIP }), false, nil, "matches only on email"},
		{"different devices", set(func(p *Payment) {
			only(CE3Device, CE3Email)(p)
			p.DeviceFingerprint, p.DeviceID = otherDeviceFP, otherDeviceID
		}), false, nil, "matches only on email"},
		{"device id matches though fingerprint differs", set(func(p *Payment) {
			only(CE3Device, CE3Email)(p)
			p.DeviceFingerprint = otherDeviceFP
		}), true, []CE3Identifier{CE3Device, CE3Email}, ""},
		{"fingerprint matches, no device id", set(func(p *Payment) {
			only(CE3Device, CE3Email)(p)
			p.DeviceID = ""
		}), true, []CE3Identifier{CE3Device, CE3Email}, ""},
		{"different email and account", set(func(p *Payment) {
			only(CE3PurchaseIP, CE3Email, CE3AccountID)(p)
			p.Email, p.AccountID = otherEmail, otherAccount
		}), false, nil, "matches only on purchase IP"},
		{"email compared case-insensitively", set(func(p *Payment) {
			only(CE3PurchaseIP, CE3Email)(p)
			p.Email = " ADA@Example.COM "
		}), true, []CE3Identifier{CE3PurchaseIP, CE3Email}, ""},
		{"account id is case-sensitive", set(func(p *Payment) {
			only(CE3PurchaseIP, CE3AccountID)(p)
			p.AccountID = strings.ToUpper(testAccount)
		}), false, nil, "matches only on purchase IP"},
		{"IPv4-mapped IPv6 equals IPv4", set(func(p *Payment) {
			only(CE3PurchaseIP, CE3Email)(p)
			p.PurchaseIP = "::ffff:" + testIP
		}), true, []CE3Identifier{CE3PurchaseIP, CE3Email}, ""},
		{"unparseable IP does not count", set(func(p *Payment) {
			only(CE3PurchaseIP, CE3Email)(p)
			p.PurchaseIP = "unknown"
		}), false, nil, "matches only on email"},
		{"address ignores case and punctuation", set(func(p *Payment) {
			only(CE3PurchaseIP, CE3ShippingAddress)(p)
			p.ShippingAddress = Address{Line1: "1  MAIN ST", City: "springfield", State: "il", PostalCode: "62701", Country: "us"}
		}), true, []CE3Identifier{CE3PurchaseIP, CE3ShippingAddress}, ""},
		{"different address", set(func(p *Payment) {
			only(CE3PurchaseIP, CE3ShippingAddress)(p)
			p.ShippingAddress.PostalCode = "62702"
		}), false, nil, "matches only on purchase IP"},
		{"address without country does not count", set(func(p *Payment) {
			only(CE3PurchaseIP, CE3ShippingAddress)(p)
			p.ShippingAddress.Country = ""
		}), false, nil, "matches only on purchase IP"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := CE3Eligible(disputedPayment(), []Payment{priorPayment("ch_a", 150, tc.mod), priorPayment("ch_b", 250, tc.mod)})
			if res.Eligible != tc.eligible {
				t.Fatalf("eligible = %v; want %v (%s; %+v)", res.Eligible, tc.eligible, res.Summary, res.Priors)
			}
			if !slices.Equal(res.Shared, tc.shared) {
				t.Errorf("shared %v; want %v", res.Shared, tc.shared)
			}
			for _, v := range res.Priors {
				if tc.why != "" && !strings.Contains(v.Why, tc.why) {
					t.Errorf("%s why %q lacks %q", v.ChargeID, v.Why, tc.why)
				}
			}
		})
	}
}

// TestCE3DeviceMinimumLengths: Stripe rejects device fingerprints under 20
// characters and device ids under 15, so they do not count.
func TestCE3DeviceMinimumLengths(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		fp, id   string
		eligible bool
	}{
		{"fingerprint of 20", strings.Repeat("f", 20), "", true},
		{"fingerprint of 19", strings.Repeat("f", 19), "", false},
		{"device id of 15", "", strings.Repeat("7", 15), true},
		{"device id of 14", "", strings.Repeat("7", 14), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dev := func(p *Payment) {
				only(CE3Device, CE3Email)(p)
				p.DeviceFingerprint, p.DeviceID = tc.fp, tc.id
			}
			res := CE3Eligible(disputedPayment(dev), []Payment{priorPayment("ch_a", 150, dev), priorPayment("ch_b", 250, dev)})
			if res.Eligible != tc.eligible {
				t.Errorf("eligible = %v; want %v (%s)", res.Eligible, tc.eligible, res.Summary)
			}
		})
	}
}

// TestCE3SameIdentifiersAcrossAllThree: each prior matching the disputed
// charge on different identifiers is not enough.
func TestCE3SameIdentifiersAcrossAllThree(t *testing.T) {
	t.Parallel()
	res := CE3Eligible(disputedPayment(), []Payment{
		priorPayment("ch_a", 150, only(CE3PurchaseIP, CE3Email)),
		priorPayment("ch_b", 250, only(CE3Device, CE3AccountID)),
	})
	if res.Eligible {
		t.Fatalf("eligible: %s", res.Summary)
	}
	for _, v := range res.Priors {
		if !v.Qualifies {
			t.Errorf("%s should qualify on its own: %s", v.ChargeID, v.Why)
		}
	}
	for _, s := range []string{"ch_a, ch_b each qualify", "all three transactions to match on the same identifiers"} {
		if !strings.Contains(res.Summary, s) {
			t.Errorf("summary %q lacks %q", res.Summary, s)
		}
	}

	// The device too: one prior matching by fingerprint and the other by
	// device id do not share one device value with the disputed charge.
	byFP := set(func(p *Payment) { only(CE3Device, CE3Email)(p); p.DeviceID = otherDeviceID })
	byID := set(func(p *Payment) { only(CE3Device, CE3Email)(p); p.DeviceFingerprint = otherDeviceFP })
	res = CE3Eligible(disputedPayment(), []Payment{priorPayment("ch_fp", 150, byFP), priorPayment("ch_id", 250, byID)})
	if res.Eligible || !res.Priors[0].Qualifies || !res.Priors[1].Qualifies {
		t.Fatalf("got %+v", res)
	}
	res = CE3Eligible(disputedPayment(), []Payment{priorPayment("ch_fp", 150, byFP), priorPayment("ch_id", 250, byID), priorPayment("ch_fp2", 300, byFP)})
	if !res.Eligible || !slices.Equal(res.Selected, []string{"ch_fp", "ch_fp2"}) ||
		!slices.Equal(res.Shared, []CE3Identifier{CE3Device, CE3Email}) {
		t.Fatalf("got %+v", res)
	}

	// A third prior sharing IP and email with ch_a makes a valid pair.
	res = CE3Eligible(disputedPayment(), []Payment{
		priorPayment("ch_a", 150, only(CE3PurchaseIP, CE3Email)),
		priorPayment("ch_b", 250, only(CE3Device, CE3AccountID)),
		priorPayment("ch_c", 300, only(CE3PurchaseIP, CE3Email, CE3ShippingAddress)),
	})
	if !res.Eligible || !slices.Equal(res.Selected, []string{"ch_a", "ch_c"}) ||
		!slices.Equal(res.Shared, []CE3Identifier{CE3PurchaseIP, CE3Email}) {
		t.Fatalf("got %+v", res)
	}
}

func TestCE3PairSelection(t *testing.T) {
	t.Parallel()
	// ch_old1 and ch_old2 share more identifiers than any pair with the
	// most recent ch_new; the pair sharing most wins.
	res := CE3Eligible(disputedPayment(), []Payment{
		priorPayment("ch_new", 130, only(CE3PurchaseIP, CE3Email)),
		priorPayment("ch_old1", 300),
		priorPayment("ch_old2", 320),
	})
	if !slices.Equal(res.Selected, []string{"ch_old1", "ch_old2"}) || len(res.Shared) != 5 {
		t.Errorf("selected %v shared %v", res.Selected, res.Shared)
	}
	// Ties go to the most recent pair, whatever the input order.
	res = CE3Eligible(disputedPayment(), []Payment{
		priorPayment("ch_3", 300), priorPayment("ch_1", 130), priorPayment("ch_4", 360), priorPayment("ch_2", 200),
	})
	if !slices.Equal(res.Selected, []string{"ch_1", "ch_2"}) {
		t.Errorf("selected %v; want the two most recent", res.Selected)
	}
	// Priors are reported in input order.
	var order []string
	for _, v := range res.Priors {
		order = append(order, v.ChargeID)
	}
	if !slices.Equal(order, []string{"ch_3", "ch_1", "ch_4", "ch_2"}) {
		t.Errorf("priors in order %v", order)
	}
}

func TestCE3PriorConditions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		prior Payment
		why   string
	}{
		{"different card", priorPayment("ch_x", 200, set(func(p *Payment) { p.CardFingerprint = "OtherCard000" })), "was paid with a different card"},
		{"no card fingerprint", priorPayment("ch_x", 200, set(func(p *Payment) { p.CardFingerprint = "" })), "has no card fingerprint"},
		{"not paid", priorPayment("ch_x", 200, set(func(p *Payment) { p.Paid = false })), "was not paid"},
		{"disputed", priorPayment("ch_x", 200, set(func(p *Payment) { p.Disputed = true })), "was disputed"},
		{"fraud reported", priorPayment("ch_x", 200, set(func(p *Payment) { p.FraudReported = true })), "has a fraud report"},
		{"no date", priorPayment("ch_x", 200, set(func(p *Payment) { p.Created = time.Time{} })), "has no charge date"},
		{"several problems at once", priorPayment("ch_x", 30, set(func(p *Payment) {
			p.Paid, p.Disputed = false, true
			only(CE3Email)(p)
		})), "is only 30 days before the disputed charge (needs 120–365); was not paid; was disputed; matches only on email"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := CE3Eligible(disputedPayment(), []Payment{tc.prior, priorPayment("ch_ok", 200)})
			if res.Eligible {
				t.Fatalf("eligible: %s", res.Summary)
			}
			v := res.Priors[0]
			if v.Qualifies || !strings.Contains(v.Why, tc.why) {
				t.Errorf("verdict %+v; want why containing %q", v, tc.why)
			}
			if want := "Not eligible: only ch_ok qualifies; Visa needs 2."; res.Summary != want {
				t.Errorf("summary %q; want %q", res.Summary, want)
			}
		})
	}
}

func TestCE3PriorList(t *testing.T) {
	t.Parallel()
	t.Run("no priors", func(t *testing.T) {
		res := CE3Eligible(disputedPayment(), nil)
		if res.Eligible || !strings.Contains(res.Summary, "no prior charges") {
			t.Errorf("got %+v", res)
		}
	})
	t.Run("none qualify", func(t *testing.T) {
		res := CE3Eligible(disputedPayment(), []Payment{priorPayment("ch_a", 10), priorPayment("ch_b", 400)})
		if res.Eligible || res.Summary != "Not eligible: none of the 2 prior charges qualifies; Visa needs 2." {
			t.Errorf("got %q", res.Summary)
		}
	})
	t.Run("disputed charge among the priors", func(t *testing.T) {
		self := priorPayment("ch_disputed", 200)
		res := CE3Eligible(disputedPayment(), []Payment{self, priorPayment("ch_a", 200)})
		if res.Eligible || res.Priors[0].Why != "is the disputed charge itself" {
			t.Errorf("got %+v", res)
		}
	})
	t.Run("same prior listed twice", func(t *testing.T) {
		a := priorPayment("ch_a", 200)
		res := CE3Eligible(disputedPayment(), []Payment{a, a})
		if res.Eligible || !res.Priors[0].Qualifies || res.Priors[1].Qualifies || !strings.Contains(res.Priors[1].Why, "listed more than once") {
			t.Errorf("got %+v", res)
		}
	})
	t.Run("priors without ids are not duplicates", func(t *testing.T) {
		res := CE3Eligible(disputedPayment(), []Payment{priorPayment("", 200), priorPayment("", 250)})
		if !res.Eligible {
			t.Errorf("got %+v", res)
		}
	})
}

func TestCE3DisputedCharge(t *testing.T) {
	t.Parallel()
	priors := []Payment{priorPayment("ch_a", 150), priorPayment("ch_b", 250)}
	tests := []struct {
		name     string
		mod      func(*Payment)
		eligible bool
		summary  string
	}{
		{"visa 10.4", func(*Payment) {}, true, "Eligible"},
		{"brand and code normalised", set(func(p *Payment) { p.CardBrand, p.NetworkReasonCode = " Visa ", " 10.4 " }), true, "Eligible"},
		{"mastercard", set(func(p *Payment) { p.CardBrand, p.NetworkReasonCode = "mastercard", "4837" }), false,
			"Not eligible: CE 3.0 applies to Visa reason code 10.4 only; the card brand is mastercard."},
		{"no brand", set(func(p *Payment) { p.CardBrand = "" }), false, "the card brand is unknown"},
		{"amex", set(func(p *Payment) { p.CardBrand, p.NetworkReasonCode = "American Express", "F29" }), false, "the card brand is amex."},
		{"visa 10.3", set(func(p *Payment) { p.NetworkReasonCode = "10.3" }), false, "this is Visa 10.3."},
		{"visa 13.2", set(func(p *Payment) { p.NetworkReasonCode = "13.2" }), false, "this is Visa 13.2."},
		{"visa 10.5", set(func(p *Payment) { p.NetworkReasonCode = "10.5" }), false, "this is Visa 10.5."},
		{"no code", set(func(p *Payment) { p.NetworkReasonCode = "" }), false, "this dispute has no network reason code"},
		{"no card fingerprint", set(func(p *Payment) { p.CardFingerprint = " " }), false, "has no card fingerprint"},
		{"no date", set(func(p *Payment) { p.Created = time.Time{} }), false, "has no date"},
		{"no main identifier", only(CE3Email, CE3AccountID, CE3ShippingAddress), false, "neither a usable purchase IP nor a device"},
		{"IP alone is enough to look", only(CE3PurchaseIP, CE3Email), true, "purchase IP and email"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := CE3Eligible(disputedPayment(tc.mod), priors)
			if res.Eligible != tc.eligible || !strings.Contains(res.Summary, tc.summary) {
				t.Fatalf("got eligible %v %q; want %v containing %q", res.Eligible, res.Summary, tc.eligible, tc.summary)
			}
			if !tc.eligible && (len(res.Selected) != 0 || len(res.Shared) != 0) {
				t.Errorf("not eligible but selected %v shared %v", res.Selected, res.Shared)
			}
		})
	}
}

func TestCE3IdentifierMain(t *testing.T) {
	t.Parallel()
	for _, id := range ce3Identifiers {
		want := id == CE3PurchaseIP || id == CE3Device
		if id.Main() != want {
			t.Errorf("%s.Main() = %v", id, id.Main())
		}
	}
}

func ExampleCE3Eligible() {
	disputedAt := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	customer := func(id string, at time.Time) Payment {
		return Payment{
			ChargeID: id, Created: at, CardBrand: "visa", CardFingerprint: "Xk2pQ9",
			Paid: true, PurchaseIP: "203.0.113.7", Email: "ada@example.com",
		}
	}
	disputed := customer("ch_now", disputedAt)
	disputed.NetworkReasonCode = "10.4"
	res := CE3Eligible(disputed, []Payment{
		customer("ch_jan", disputedAt.AddDate(0, 0, -60)),
		customer("ch_oct", disputedAt.AddDate(0, 0, -150)),
		customer("ch_jun", disputedAt.AddDate(0, 0, -270)),
	})
	fmt.Println(res.Summary)
	for _, p := range res.Priors {
		fmt.Printf("%s: %s\n", p.ChargeID, p.Why)
	}
	// Output:
	// Eligible: ch_oct (150 days before) and ch_jun (270 days before) share the disputed charge's purchase IP and email.
	// ch_jan: is only 60 days before the disputed charge (needs 120–365)
	// ch_oct: qualifies: same card, 150 days before, paid, undisputed, matches on purchase IP and email
	// ch_jun: qualifies: same card, 270 days before, paid, undisputed, matches on purchase IP and email
}
