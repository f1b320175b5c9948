package stdwebhooks

import (
	"errors"
	"net/http"
	"testing"
	"time"
)

// The specification's own test vector (standard-webhooks, libraries'
// shared tests).
func TestSpecVector(t *testing.T) {
	key, err := Key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}

func TestVerify(t *testing.T) {
	key, _ := Key("whsec_" + "c2VjcmV0LWtleS1mb3ItdGVzdHM=")
	old, _ := Key("an old raw secret")
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"id":"T-1"}`)
	signed := func(at time.Time, k []byte) http.Header {
		h := http.Header{}
		SetHeaders(h, k, "msg_1", at, body)
		return h
	}
	for _, tc := range []struct {
		name string
		h    http.Header
		body []byte
		keys [][]byte
		want error
	}{
		{"good", signed(now, key), body, [][]byte{key}, nil},
		{"rotated: second key matches", signed(now, old), body, [][]byte{key, old}, nil},
		{"exactly 5 min old", signed(now.Add(-DefaultTolerance), key), body, [][]byte{key}, nil},
		{"5 min 1 s old", signed(now.Add(-DefaultTolerance-time.Second), key), body, [][]byte{key}, ErrTooOld},
		{"exactly 5 min ahead", signed(now.Add(DefaultTolerance), key), body, [][]byte{key}, nil},
		{"5 min 1 s ahead", signed(now.Add(DefaultTolerance+time.Second), key), body, [][]byte{key}, ErrTooOld},
		{"body changed", signed(now, key), []byte(`{"id":"T-2"}`), [][]byte{key}, ErrNoMatch},
		{"wrong key", signed(now, old), body, [][]byte{key}, ErrNoMatch},
		{"no headers", http.Header{}, body, [][]byte{key}, ErrMissingHeaders},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Verify(tc.h, tc.body, tc.keys, now, DefaultTolerance); !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
	h := signed(now, key)
	h.Set(HeaderSignature, "v1,bm90IGl0 "+h.Get(HeaderSignature))
	if _, err := Verify(h, body, [][]byte{key}, now, DefaultTolerance); err != nil {
		t.Fatalf("several signatures, one good: %v", err)
	}
	h.Set(HeaderTimestamp, "soon")
	if _, err := Verify(h, body, [][]byte{key}, now, DefaultTolerance); !errors.Is(err, ErrBadTimestamp) {
		t.Fatalf("bad timestamp: %v", err)
	}
	if _, err := Key("whsec_***"); err == nil {
		t.Fatal("a whsec_ secret that is not base64 was accepted")
	}
}
