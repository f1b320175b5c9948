package billing

import (
	"sort"
	"strconv"
	"strings"
	"time"
)

// zeroDecimal lists the currencies Stripe counts in whole units (an amount
// of 1200 JPY is ¥1,200, not ¥12.00).
var zeroDecimal = map[string]bool{
	"bif": true, "clp": true, "djf": true, "gnf": true, "jpy": true, "kmf": true,
	"krw": true, "mga": true, "pyg": true, "rwf": true, "ugx": true, "vnd": true,
	"vuv": true, "xaf": true, "xof": true, "xpf": true,
}

// threeDecimal lists the currencies Stripe counts in thousandths.
var threeDecimal = map[string]bool{"bhd": true, "jod": true, "kwd": true, "omr": true, "tnd": true}

// currencySymbols are the currencies written with a leading symbol; every
// other currency is written "12.50 SEK".
var currencySymbols = map[string]string{"usd": "$", "eur": "€"}

// FormatMoney writes an amount in minor units the way an agent reads it:
// "$49.00", "€12.50", "12.50 SEK", "1200 JPY" (zero-decimal currencies have
// no decimals), "-$5.00" for negative amounts. An empty currency gives the
// bare number.
func FormatMoney(amount int64, currency string) string {
	cur := strings.ToLower(currency)
	sign := ""
	u := uint64(amount)
	if amount < 0 {
		sign = "-"
		u = uint64(-amount)
	}
	decimals := 2
	switch {
	case zeroDecimal[cur]:
		decimals = 0
	case threeDecimal[cur]:
		decimals = 3
	}
	num := strconv.FormatUint(u, 10)
	if decimals > 0 {
		for len(num) <= decimals {
			num = "0" + num
		}
		num = num[:len(num)-decimals] + "." + num[len(num)-decimals:]
	}
	if sym, ok := currencySymbols[cur]; ok {
		return sign + sym + num
	}
	if cur == "" {
		return sign + num
	}
	return sign + num + " " + strings.ToUpper(cur)
}

// formatDay writes a date as 2026-11-25 (UTC).
func formatDay(t time.Time) string { return t.UTC().Format("2006-01-02") }

// Severities of timeline entries.
const (
	SeverityInfo     = "info"
	SeverityWarning  = "warning"
	SeverityCritical = "critical"
)

func severityRank(s string) int {
	switch s {
	case SeverityCritical:
		return 2
	case SeverityWarning:
		return 1
	}
	return 0
}

// fact is one sentence of a summary and how serious it is.
type fact struct {
	text     string
	severity string
}

// summary joins facts into one line, keeping the highest severity.
func summary(facts ...fact) (string, string) {
	var parts []string
	sev := SeverityInfo
	for _, f := range facts {
		if f.text == "" {
			continue
		}
		parts = append(parts, f.text)
		if severityRank(f.severity) > severityRank(sev) {
			sev = f.severity
		}
	}
	return singleLine(redactPAN(strings.Join(parts, "; "))), sev
}

// quote shortens free text for a summary.
func quote(s string) string {
	s = singleLine(s)
	if r := []rune(s); len(r) > 160 {
		s = string(r[:157]) + "…"
	}
	return "\"" + s + "\""
}

// changedKeys lists previous_attributes keys, sorted, for "updated" facts.
func changedKeys(prev map[string]any) string {
	if len(prev) == 0 {
		return ""
	}
	keys := make([]string, 0, len(prev))
	for k := range prev {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return " (" + strings.Join(keys, ", ") + ")"
}
