package disputes

import (
	"strings"
)

// Card brands as Stripe names them (payment_method_details.card.brand).
// Brands are open strings; these are the ones with network reason code
// tables here.
const (
	BrandVisa       = "visa"
	BrandMastercard = "mastercard"
	BrandAmex       = "amex"
	BrandDiscover   = "discover"
)

// Stripe dispute reasons (dispute.reason). Reasons are open strings: newer
// API versions add values, and every function here accepts any string.
const (
	ReasonBankCannotProcess       = "bank_cannot_process"
	ReasonCheckReturned           = "check_returned"
	ReasonCreditNotProcessed      = "credit_not_processed"
	ReasonCustomerInitiated       = "customer_initiated"
	ReasonDebitNotAuthorized      = "debit_not_authorized"
	ReasonDuplicate               = "duplicate"
	ReasonFraudulent              = "fraudulent"
	ReasonGeneral                 = "general"
	ReasonIncorrectAccountDetails = "incorrect_account_details"
	ReasonInsufficientFunds       = "insufficient_funds"
	ReasonNoncompliant            = "noncompliant"
	ReasonProductNotReceived      = "product_not_received"
	ReasonProductUnacceptable     = "product_unacceptable"
	ReasonSubscriptionCanceled    = "subscription_canceled"
	ReasonUnrecognized            = "unrecognized"
)

// brandAliases maps the spellings Stripe has used for card brands (the
// legacy Card object says "American Express", "MasterCard", "Visa"), with
// case, spaces, underscores and hyphens removed, to the brand names of
// payment_method_details.card.brand.
var brandAliases = map[string]string{
	"visa":            BrandVisa,
	"mastercard":      BrandMastercard,
	"amex":            BrandAmex,
	"americanexpress": BrandAmex,
	"discover":        BrandDiscover,
}

// NormalizeBrand returns brand as Stripe's payment_method_details.card.brand
// names it: trimmed and lower-cased, with the legacy spellings of the four
// networks mapped ("American Express" → "amex", "MasterCard" →
// "mastercard"). Other brands are returned trimmed and lower-cased.
func NormalizeBrand(brand string) string {
	b := strings.ToLower(strings.TrimSpace(brand))
	key := strings.NewReplacer(" ", "", "_", "", "-", "").Replace(b)
	if canonical, ok := brandAliases[key]; ok {
		return canonical
	}
	return b
}

// NormalizeCode returns a network reason code trimmed and upper-cased, the
// form the tables here use ("c08" → "C08", " 10.4 " → "10.4").
func NormalizeCode(code string) string {
	return strings.ToUpper(strings.TrimSpace(code))
}

// networkReasons maps each brand's exact (normalised) network reason codes
// to Stripe's reason. Visa's open families (11.x, 12.6.x) are handled by
// visaFamilyReason.
var networkReasons = map[string]map[string]string{
	BrandVisa: {
		"10.1": ReasonFraudulent, "10.2": ReasonFraudulent, "10.3": ReasonFraudulent,
		"10.4": ReasonFraudulent, "10.5": ReasonFraudulent,
		"12.1": ReasonGeneral, "12.2": ReasonGeneral, "12.3": ReasonGeneral,
		"12.4": ReasonGeneral, "12.5": ReasonGeneral, "12.7": ReasonGeneral,
		"12.6": ReasonDuplicate,
		"13.1": ReasonProductNotReceived,
		"13.2": ReasonSubscriptionCanceled,
		"13.3": ReasonProductUnacceptable, "13.4": ReasonProductUnacceptable, "13.5": ReasonProductUnacceptable,
		"13.6": ReasonCreditNotProcessed, "13.7": ReasonCreditNotProcessed,
	},
	BrandMastercard: {
		"4837": ReasonFraudulent, "4870": ReasonFraudulent, "4871": ReasonFraudulent, "4849": ReasonFraudulent,
		"4853": ReasonProductUnacceptable,
		"4834": ReasonDuplicate,
		"4841": ReasonSubscriptionCanceled,
		"4855": ReasonProductNotReceived,
		"4860": ReasonCreditNotProcessed,
		"4863": ReasonUnrecognized,
	},
	BrandAmex: {
		"F29": ReasonFraudulent, "F10": ReasonFraudulent, "F24": ReasonFraudulent,
		"F30": ReasonFraudulent, "F31": ReasonFraudulent,
		"C08": ReasonProductNotReceived,
		"C28": ReasonSubscriptionCanceled,
		"C02": ReasonCreditNotProcessed, "C04": ReasonCreditNotProcessed, "C05": ReasonCreditNotProcessed,
		"C14": ReasonDuplicate,
		"C31": ReasonProductUnacceptable, "C32": ReasonProductUnacceptable,
		"127": ReasonUnrecognized, "176": ReasonUnrecognized,
	},
	BrandDiscover: {
		"7030": ReasonFraudulent, "4866": ReasonFraudulent, "4867": ReasonFraudulent,
		"4541": ReasonSubscriptionCanceled,
		"4755": ReasonProductNotReceived,
		"8002": ReasonCreditNotProcessed,
		"4534": ReasonDuplicate, "4865": ReasonDuplicate,
	},
}

// ReasonForCode returns the Stripe dispute reason that a card network's
// reason code corresponds to, and whether the (brand, code) pair is in the
// table. brand is normalised with [NormalizeBrand] and code with
// [NormalizeCode]; Visa codes may carry a sub-code (12.6.1, 12.6.2) and
// Visa's authorisation family matches any 11.N. Unknown brands and codes
// return ("", false): the caller should then rely on Stripe's own reason.
func ReasonForCode(brand, code string) (reason string, ok bool) {
	b, c := NormalizeBrand(brand), NormalizeCode(code)
	if c == "" {
		return "", false
	}
	if r, ok := networkReasons[b][c]; ok {
		return r, true
	}
	if b == BrandVisa {
		return visaFamilyReason(c)
	}
	return "", false
}

// visaFamilyReason matches Visa's open code families: 11.N (authorisation)
// → general and 12.6.N (duplicate processing / paid by other means) →
// duplicate.
func visaFamilyReason(code string) (string, bool) {
	if rest, ok := strings.CutPrefix(code, "11."); ok && allDigits(rest) {
		return ReasonGeneral, true
	}
	if rest, ok := strings.CutPrefix(code, "12.6."); ok && allDigits(rest) {
		return ReasonDuplicate, true
	}
	return "", false
}

// allDigits reports whether s is one or more ASCII digits.
func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// normalizeReason returns a Stripe reason trimmed and lower-cased.
func normalizeReason(reason string) string { return strings.ToLower(strings.TrimSpace(reason)) }
