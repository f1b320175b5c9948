package disputes

import "strings"

// codeMeanings says in plain words what the common network reason codes
// claim (the networks' own titles, shortened).
var codeMeanings = map[string]map[string]string{
	BrandVisa: {
		"10.1": "EMV liability shift counterfeit fraud", "10.2": "EMV liability shift non-counterfeit fraud",
		"10.3": "other fraud, card present", "10.4": "other fraud, card absent: the cardholder says they did not make or allow the payment",
		"10.5": "Visa Fraud Monitoring Program",
		"11.1": "card recovery bulletin", "11.2": "declined authorisation", "11.3": "no authorisation",
		"12.1": "late presentment", "12.2": "incorrect transaction code", "12.3": "incorrect currency",
		"12.4": "incorrect account number", "12.5": "incorrect amount", "12.6.1": "duplicate processing",
		"12.6.2": "paid by other means", "12.7": "invalid data",
		"13.1": "merchandise or services not received", "13.2": "cancelled recurring transaction: the cardholder says they cancelled before the charge",
		"13.3": "not as described or defective", "13.4": "counterfeit merchandise", "13.5": "misrepresentation",
		"13.6": "credit not processed: the cardholder says a promised refund never came", "13.7": "cancelled merchandise or services",
	},
	BrandMastercard: {
		"4837": "no cardholder authorisation", "4870": "chip liability shift", "4871": "chip/PIN liability shift",
		"4849": "questionable merchant activity", "4853": "cardholder dispute (not as described, not provided, credit not processed, recurring)",
		"4834": "point-of-interaction error (duplicate or incorrect processing)", "4841": "cancelled recurring transaction",
		"4855": "goods or services not provided", "4860": "credit not processed", "4863": "cardholder does not recognise the charge",
	},
	BrandAmex: {
		"F29": "card not present fraud", "F10": "missing imprint", "F24": "no card member authorisation",
		"F30": "EMV counterfeit", "F31": "EMV lost/stolen/non-received",
		"C08": "goods or services not received", "C28": "cancelled recurring billing",
		"C02": "credit not processed", "C04": "goods or services returned or refused", "C05": "goods or services cancelled",
		"C14": "paid by other means", "C31": "goods or services not as described", "C32": "goods or services damaged or defective",
		"127": "request for information: charge not recognised", "176": "request for information: charge not recognised",
	},
	BrandDiscover: {
		"7030": "fraud, card not present", "4866": "fraud, chip card counterfeit", "4867": "fraud, chip and PIN",
		"4541": "automatic payment cancelled", "4755": "non-receipt of goods or services",
		"8002": "credit not processed", "4534": "duplicate processing", "4865": "paid by other means",
	},
}

// reasonMeanings says what each Stripe reason claims.
var reasonMeanings = map[string]string{
	ReasonFraudulent:           "the cardholder says they did not make or allow the payment",
	ReasonUnrecognized:         "the cardholder does not recognise the charge",
	ReasonSubscriptionCanceled: "the cardholder says the subscription was cancelled before the charge",
	ReasonCreditNotProcessed:   "the cardholder says a refund or credit is owed and was not given",
	ReasonDuplicate:            "the cardholder says they were charged twice for the same thing",
	ReasonProductNotReceived:   "the cardholder says they did not receive what they paid for",
	ReasonProductUnacceptable:  "the cardholder says what they received was not as described or defective",
	ReasonGeneral:              "a claim that fits no other category",
}

// CodeMeaning returns what a network reason code claims in plain words,
// falling back to the meaning of Stripe's reason (and to the reason itself).
func CodeMeaning(brand, code, reason string) string {
	b, c := NormalizeBrand(brand), NormalizeCode(code)
	if m, ok := codeMeanings[b][c]; ok {
		return m
	}
	if b == BrandVisa && strings.HasPrefix(c, "11.") {
		return "authorisation error"
	}
	if m, ok := reasonMeanings[normalizeReason(reason)]; ok {
		return m
	}
	if reason == "" {
		return "no reason given"
	}
	return strings.ReplaceAll(reason, "_", " ")
}
