package webhooks

import (
	"testing"

	"github.com/recourse-hq/recourse/internal/errs"
)

// FuzzParseEnvelope: any verified body either parses into an event with an
// id, a type and a created time, or is refused as EINVALID — never a panic
// and never an event missing what the inbox indexes.
func FuzzParseEnvelope(f *testing.F) {
	f.Add([]byte(`{"id":"evt_1","object":"event","type":"invoice.paid","created":1700000000,"data":{"object":{"id":"in_1","object":"invoice"}}}`))
	f.Add([]byte(`{"id":"evt_1","type":"x","created":1,"data":{"object":null}}`))
	f.Add([]byte(`{"id":"evt_1","type":"x","created":1,"data":"oops"}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"id":`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := parseEnvelope(body)
		if err != nil {
			if !errs.Is(err, errs.EINVALID) {
				t.Fatalf("error of kind %v: %v", errs.KindOf(err), err)
			}
			return
		}
		if ev.ID == "" || ev.Type == "" || ev.Created.IsZero() || len(ev.ObjectID) > maxIDLen {
			t.Fatalf("accepted an unusable event: %+v", ev)
		}
	})
}
