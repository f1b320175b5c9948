package browsertest

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/chromedp/chromedp"
)

// axeSource is axe-core, vendored from its npm package (see
// testdata/VENDORED.md for its version, licence and checksum).
//
//go:embed testdata/axe.min.js
var axeSource string

// AxeVersion is the version of the vendored axe-core.
const AxeVersion = "4.10.3"

// AxeViolation is one rule axe-core found broken, with the nodes that break it.
type AxeViolation struct {
	ID          string    `json:"id"`     // the rule, e.g. "image-alt"
	Impact      string    `json:"impact"` // minor, moderate, serious or critical
	Description string    `json:"description"`
	Help        string    `json:"help"`
	HelpURL     string    `json:"helpUrl"`
	Nodes       []AxeNode `json:"nodes"`
}

// AxeNode is one element that breaks a rule.
type AxeNode struct {
	// Target is the CSS selector path of the element; more than one element
	// when it is inside frames or shadow roots.
	Target         json.RawMessage `json:"target"`
	HTML           string          `json:"html"`
	FailureSummary string          `json:"failureSummary"`
}

// Blocking reports whether the violation's impact is serious or critical:
// those fail the test.
func (v AxeViolation) Blocking() bool {
	return v.Impact == "serious" || v.Impact == "critical"
}

// AxeOption changes what Axe checks.
type AxeOption func(*axeConfig)

type axeConfig struct {
	exclude      []string
	disableRules []string
}

// AxeExclude leaves the elements matching these CSS selectors out of the
// check (a third-party widget, say). Say why beside the call.
func AxeExclude(selectors ...string) AxeOption {
	return func(c *axeConfig) { c.exclude = append(c.exclude, selectors...) }
}

// AxeDisableRules turns these axe rules off. Say why beside the call.
func AxeDisableRules(ids ...string) AxeOption {
	return func(c *axeConfig) { c.disableRules = append(c.disableRules, ids...) }
}

// Axe runs axe-core in the current page and fails the test on any violation
// of impact serious or critical, listing each rule, its impact and the
// elements that break it. Minor and moderate violations are logged.
func (s *Session) Axe(opts ...AxeOption) {
	s.t.Helper()
	var blocking, other []AxeViolation
	for _, v := range s.AxeViolations(opts...) {
		if v.Blocking() {
			blocking = append(blocking, v)
		} else {
			other = append(other, v)
		}
	}
	if len(other) > 0 {
		s.t.Logf("browsertest: axe: %d minor or moderate violation(s) on %s:\n%s", len(other), s.Location(), FormatViolations(other))
	}
	if len(blocking) > 0 {
		s.t.Errorf("browsertest: axe: %d serious or critical violation(s) on %s:\n%s", len(blocking), s.Location(), FormatViolations(blocking))
	}
}

// AxeViolations runs axe-core in the current page and returns every violation
// it finds, whatever its impact. It fails the test only when axe cannot run.
func (s *Session) AxeViolations(opts ...AxeOption) []AxeViolation {
	s.t.Helper()
	var cfg axeConfig
	for _, o := range opts {
		o(&cfg)
	}
	ctx, cancel := context.WithTimeout(s.ctx, 2*s.timeout())
	defer cancel()
	// Runtime.evaluate runs outside the page's Content-Security-Policy, so
	// axe loads under the console's script-src 'self' (the self-test
	// proves it).
	loaded, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`typeof window.axe === "object"`))
	if err != nil {
		s.fatalf("axe: %v", err)
	}
	if !loaded {
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](axeSource+"\n;true")); err != nil {
			s.fatalf("axe: load axe-core %s: %v", AxeVersion, err)
		}
	}
	scope := []byte("document")
	if len(cfg.exclude) > 0 {
		scope, _ = json.Marshal(map[string]any{"include": []string{"html"}, "exclude": cfg.exclude})
	}
	rules := map[string]any{}
	for _, id := range cfg.disableRules {
		rules[id] = map[string]bool{"enabled": false}
	}
	options, _ := json.Marshal(map[string]any{"resultTypes": []string{"violations"}, "rules": rules})
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](
		fmt.Sprintf(`axe.run(%s, %s).then(r => JSON.stringify(r.violations))`, scope, options),
		chromedp.EvalAwaitPromise))
	if err != nil {
		s.fatalf("axe: run: %v", err)
	}
	var violations []AxeViolation
	if err := json.Unmarshal([]byte(raw), &violations); err != nil {
		s.fatalf("axe: decode results: %v", err)
	}
	return violations
}

// FormatViolations lists violations one rule a line, then each element that
// breaks it: "rule-id (impact): help <url>" / "    target: summary".
func FormatViolations(vs []AxeViolation) string {
	var b strings.Builder
	for _, v := range vs {
		fmt.Fprintf(&b, "  %s (%s): %s <%s>\n", v.ID, v.Impact, v.Help, v.HelpURL)
		for _, n := range v.Nodes {
			summary := strings.ReplaceAll(strings.TrimSpace(n.FailureSummary), "\n", "; ")
			fmt.Fprintf(&b, "      %s %s: %s\n", n.Target, n.HTML, summary)
		}
	}
	return b.String()
}
