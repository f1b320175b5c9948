package disputes

import (
	"fmt"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/pan"
)

// A packet over its page limit is rendered again with shorter exhibits
// until it fits.
func TestPacketWithinShrinks(t *testing.T) {
	t.Parallel()
	rows := make([][]string, 300)
	for i := range rows {
		rows[i] = []string{fmt.Sprintf("row %d", i), "x"}
	}
	asm := assembly{
		Letter:   letter{Title: "Response to dispute dp_1", Identifiers: []string{"Dispute: dp_1"}, Position: "p", Request: "r"},
		Exhibits: []exhibit{{Number: 1, Title: "Log", Proves: "things", Table: &exhibitTable{Header: []string{"a", "b"}, Widths: []float64{80, 80}, Rows: rows}}},
	}
	full, fullPages, err := packetWithin(asm, time.Unix(0, 0), 100)
	if err != nil {
		t.Fatal(err)
	}
	small, pages, err := packetWithin(asm, time.Unix(0, 0), 5)
	if err != nil {
		t.Fatal(err)
	}
	if fullPages < 8 || pages >= 5 || len(small) >= len(full) {
		t.Fatalf("full %d pages, shrunk %d pages", fullPages, pages)
	}
}

// FuzzClean: whatever a fact or a mirror field holds, assembled text never
// carries a link or a card number, so it always passes Stripe's link rule.
func FuzzClean(f *testing.F) {
	for _, s := range []string{"see https://www.example.com/x", "WWW.Example.com", "card 4242 4242 4242 4242", "http://", "www.www.a", "plain", "hthttp://tp://x", "4242 4242 http://4242 4242"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := clean(s)
		if link, ok := findAnyLink(out); ok {
			t.Fatalf("clean(%q) = %q still links %q", s, out, link)
		}
		if pan.Contains(out) {
			t.Fatalf("clean(%q) = %q holds a card number", s, out)
		}
	})
}
