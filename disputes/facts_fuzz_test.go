package disputes

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/pan"
)

// FuzzFactInput feeds arbitrary facts to the parser: it never panics, and
// whatever it accepts holds no card number anywhere and a data object that
// is valid JSON within the limit.
func FuzzFactInput(f *testing.F) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	for _, s := range []string{
		`{"id":"f1","kind":"login","occurred_at":"2026-03-02T10:00:00Z","ip":"203.0.113.7"}`,
		`{"id":"c","kind":"consent","occurred_at":"2026-03-02T10:00:00+02:00","policy":{"key":"terms","version":"3"},"data":{"a":[4242424242424242,"4111 1111 1111 1111"]}}`,
		`{"id":"n","kind":"notice","occurred_at":"2026-03-02T10:00:00Z","channel":"email","template":"receipt","data":{"5555555555554444":1e400}}`,
		`{"id":"x","kind":"usage","occurred_at":"2026-03-02T10:00:00Z","data":null}`,
		`[1,2]`, `{"data":"x"}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		in, err := DecodeFactInput(json.RawMessage(s))
		if err != nil {
			return
		}
		r, err := toRow("cus_A", in, now)
		if err != nil {
			return
		}
		for _, v := range []string{r.ID, r.DeviceID, r.DeviceFingerprint, r.AccountID, r.UserAgent, r.Channel, r.Template, r.PolicyKey, r.PolicyVersion, r.Data} {
			if pan.Contains(v) {
				t.Fatalf("card number kept in %q", v)
			}
		}
		if !json.Valid([]byte(r.Data)) || len(r.Data) > MaxFactDataBytes || r.Data[0] != '{' {
			t.Fatalf("data %q", r.Data)
		}
	})
}
