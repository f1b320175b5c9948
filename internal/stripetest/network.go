package stripetest

// ReasonCode pairs a card network's dispute reason code with the Stripe
// dispute reason (category) it maps to.
type ReasonCode struct {
	Reason      string // Stripe dispute reason, e.g. "subscription_canceled"
	Code        string // network reason code, e.g. "13.2"
	Description string // the network's name for the code
}

// chargebackCodes lists, per card brand, the network reason codes used for
// chargebacks, following Stripe's network-code-to-category map.
var chargebackCodes = map[string][]ReasonCode{
	"visa": {
		{"fraudulent", "10.4", "Other Fraud - Card Absent Environment"},
		{"subscription_canceled", "13.2", "Cancelled Recurring"},
		{"product_not_received", "13.1", "Merchandise/Services Not Received"},
		{"credit_not_processed", "13.6", "Credit Not Processed"},
		{"credit_not_processed", "13.7", "Cancelled Merchandise/Services"},
		{"duplicate", "12.6.1", "Duplicate Processing"},
		{"product_unacceptable", "13.3", "Not as Described or Defective Merchandise/Services"},
		{"general", "12.5", "Incorrect Amount"},
	},
	"mastercard": {
		{"fraudulent", "4837", "No Cardholder Authorization"},
		{"unrecognized", "4863", "Cardholder Does Not Recognize - Potential Fraud"},
		{"subscription_canceled", "4841", "Cancelled Recurring or Digital Goods Transactions"},
		{"product_not_received", "4855", "Goods or Services Not Provided"},
		{"credit_not_processed", "4860", "Credit Not Processed"},
		{"duplicate", "4834", "Point-of-Interaction Error (Duplicate)"},
		{"general", "4853", "Cardholder Dispute"},
	},
	"amex": {
		{"fraudulent", "F29", "Card Not Present"},
		{"fraudulent", "F24", "No Card Member Authorization"},
		{"subscription_canceled", "C28", "Cancelled Recurring Billing"},
		{"product_not_received", "C08", "Goods/Services Not Received or Only Partially Received"},
		{"credit_not_processed", "C02", "Credit Not Processed"},
		{"duplicate", "P08", "Duplicate Charge"},
		{"product_unacceptable", "C31", "Goods/Services Not as Described"},
	},
}

// inquiryCodes lists retrieval/inquiry codes, which Stripe reports as
// disputes with a warning_* status.
var inquiryCodes = map[string][]ReasonCode{
	"visa": {
		{"fraudulent", "33", "Fraud Analysis Request"},
		{"general", "30", "Cardholder Request Due to Dispute"},
	},
	"mastercard": {
		{"unrecognized", "6321", "Cardholder Does Not Recognize Transaction"},
		{"fraudulent", "6341", "Fraud Investigation"},
		{"general", "6305", "Cardholder Does Not Agree With Amount Billed"},
	},
}

// ChargebackCodes returns the chargeback reason codes known for a card brand
// ("visa", "mastercard" or "amex").
func ChargebackCodes(brand string) []ReasonCode {
	return append([]ReasonCode(nil), chargebackCodes[brand]...)
}

// InquiryCodes returns the inquiry (retrieval request) reason codes known for
// a card brand ("visa" or "mastercard").
func InquiryCodes(brand string) []ReasonCode {
	return append([]ReasonCode(nil), inquiryCodes[brand]...)
}

// NetworkReasonCode returns the primary network reason code for a Stripe
// dispute reason on a card brand, for a chargeback or, when inquiry is true,
// for an inquiry. It returns "" when the brand has no code for the reason.
// For example NetworkReasonCode("visa", "subscription_canceled", false) is
// "13.2" and NetworkReasonCode("mastercard", "fraudulent", false) is "4837".
func NetworkReasonCode(brand, reason string, inquiry bool) string {
	if inquiry {
		for _, rc := range inquiryCodes[brand] {
			if rc.Reason == reason {
				return rc.Code
			}
		}
	}
	for _, rc := range chargebackCodes[brand] {
		if rc.Reason == reason {
			return rc.Code
		}
	}
	return ""
}
