package disputes

import (
	"fmt"
	"testing"
	"time"
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
