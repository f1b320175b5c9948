package stripe

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/stripemock"
)

// Every listed event comes back as a whole event: what a delivery carries.
func TestListEventsAgainstStripeMock(t *testing.T) {
	m := stripemock.Start(t)
	c, err := New(Config{APIKey: "sk_test_123", APIBase: m.URL, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var got []map[string]any
	err = c.ListEvents(context.Background(), now.Add(-72*time.Hour), now, func(b []byte) error {
		var ev map[string]any
		if err := json.Unmarshal(b, &ev); err != nil {
			return err
		}
		got = append(got, ev)
		return nil
	})
	if err != nil || len(got) == 0 {
		t.Fatalf("listed %d: %v", len(got), err)
	}
	for _, ev := range got {
		data, _ := ev["data"].(map[string]any)
		obj, _ := data["object"].(map[string]any)
		if ev["id"] == "" || ev["type"] == "" || ev["created"] == nil || ev["object"] != "event" || obj["id"] == nil {
			t.Fatalf("not an event: %v", ev)
		}
	}
}

// The listing asks for the window, 100 a page, and follows has_more with
// starting_after the last event of the page until the end.
func TestListEventsPages(t *testing.T) {
	var mu sync.Mutex
	var queries []url.Values
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		queries = append(queries, r.URL.Query())
		n := len(queries)
		mu.Unlock()
		if r.URL.Path != "/v1/events" {
			http.NotFound(w, r)
			return
		}
		ev := func(i int) string {
			return fmt.Sprintf(`{"id":"evt_%d","object":"event","type":"charge.succeeded","created":%d,"data":{"object":{"id":"ch_%d","object":"charge"}}}`, i, 1700000000+i, i)
		}
		w.Header().Set("Content-Type", "application/json")
		if n == 1 {
			fmt.Fprintf(w, `{"object":"list","url":"/v1/events","has_more":true,"data":[%s,%s]}`, ev(3), ev(2))
		} else {
			fmt.Fprintf(w, `{"object":"list","url":"/v1/events","has_more":false,"data":[%s]}`, ev(1))
		}
	}))
	t.Cleanup(srv.Close)
	c, err := New(Config{APIKey: "sk_test_123", APIBase: srv.URL, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	since, until := time.Unix(1700000000, 0), time.Unix(1700003600, 0)
	var ids []string
	err = c.ListEvents(context.Background(), since, until, func(b []byte) error {
		var ev struct{ ID string }
		_ = json.Unmarshal(b, &ev)
		ids = append(ids, ev.ID)
		return nil
	})
	if err != nil || fmt.Sprint(ids) != "[evt_3 evt_2 evt_1]" {
		t.Fatalf("ids %v, err %v", ids, err)
	}
	if len(queries) != 2 {
		t.Fatalf("%d requests, want 2", len(queries))
	}
	q := queries[0]
	if q.Get("created[gte]") != "1700000000" || q.Get("created[lt]") != "1700003600" || q.Get("limit") != "100" || q.Get("starting_after") != "" {
		t.Fatalf("first page query: %v", q)
	}
	if q := queries[1]; q.Get("starting_after") != "evt_2" || q.Get("created[gte]") != "1700000000" {
		t.Fatalf("second page query: %v", q)
	}
}

// A provider error mid-listing is returned, after the events before it.
func TestListEventsError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":{"type":"invalid_request_error","message":"Invalid API Key provided"}}`)
	}))
	t.Cleanup(srv.Close)
	c, _ := New(Config{APIKey: "sk_test_bad", APIBase: srv.URL, Timeout: 5 * time.Second})
	err := c.ListEvents(context.Background(), time.Now().Add(-time.Hour), time.Now(), func([]byte) error { return nil })
	if err == nil {
		t.Fatal("no error from a refused listing")
	}
}
