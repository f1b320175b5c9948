package cases

import (
	"testing"
	"time"
)

func TestNewID(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	prev := ""
	for i := 0; i < 1000; i++ {
		id := NewID(t0.Add(time.Duration(i) * time.Millisecond))
		if !validID(id) || len(id) != 31 {
			t.Fatalf("bad id %q", id)
		}
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
		if id <= prev {
			t.Fatalf("ids not time-sortable: %q after %q", id, prev)
		}
		prev = id
	}
	for _, bad := range []string{"", "case_", "case_0000000000000000000000000a", "cas_00000000000000000000000000", "case_0000000000000000000000000000"} {
		if validID(bad) {
			t.Errorf("validID(%q) = true", bad)
		}
	}
}
