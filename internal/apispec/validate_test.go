package apispec

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func exchange(method, target, reqBody string, status int, ct, respBody string) Exchange {
	req := httptest.NewRequest(method, target, strings.NewReader(reqBody))
	req.Header.Set("Authorization", "Bearer rct_x")
	h := http.Header{}
	if ct != "" {
		h.Set("Content-Type", ct)
	}
	var rb []byte
	if reqBody != "" {
		rb = []byte(reqBody)
	}
	return Exchange{Request: req, RequestBody: rb, Status: status, Header: h, ResponseBody: []byte(respBody)}
}

const envelope = `{"error":{"code":"invalid_request","message":"no","request_id":"r1"}}`

func TestValidate(t *testing.T) {
	caseJSON := `{"id":"case_1"}`
	for _, tc := range []struct {
		name    string
		ex      Exchange
		wantErr string // "" for valid
	}{
		{"a documented answer", exchange("GET", "/healthz", "", 200, "application/json", `{"status":"ok"}`), ""},
		{"a response off the schema", exchange("GET", "/healthz", "", 200, "application/json", `{"status":"fine"}`), "response 200 does not match GET /healthz"},
		{"an undocumented status", exchange("GET", "/healthz", "", 418, "application/json", `{}`), "status is not supported"},
		{"an error answered with the envelope", exchange("GET", "/api/v1/cases/case_1", "", 404, "application/json", envelope), ""},
		{"an error not in the envelope", exchange("GET", "/api/v1/cases/case_1", "", 404, "application/json", `{"message":"Not Found"}`), "does not match"},
		{"a bad request body the server refused", exchange("POST", "/api/v1/cases", `{"kind":"nope"}`, 400, "application/json", envelope), ""},
		{"a bad request body the server accepted", exchange("POST", "/api/v1/cases", `{"kind":"nope","title":"t"}`, 201, "application/json", caseJSON), "request does not match POST /api/v1/cases"},
		{"an unknown field the server accepted", exchange("POST", "/api/v1/cases/case_1/notes", `{"body":"x","extra":1}`, 201, "application/json", `{}`), "request does not match"},
		{"a static segment wins over a parameter", exchange("POST", "/api/v1/cases/bulk", `{"case_ids":["a"],"op":"tag","tags":["x"]}`, 200, "application/json", `{"data":[],"ok":0,"failed":0}`), ""},
		{"an export is checked for its content type only", exchange("GET", "/api/v1/cases?format=csv", "", 200, "text/csv; charset=utf-8", "id,kind\n"), ""},
		{"an export in a content type not documented", exchange("GET", "/api/v1/cases?format=csv", "", 200, "text/html", "<p>"), "response 200 does not match"},
		{"a 204 without a body", exchange("DELETE", "/api/v1/views/3", "", 204, "", ""), ""},
		{"an unknown route answered 404 with the envelope", exchange("GET", "/api/v1/nope", "", 404, "application/json", envelope), ""},
		{"an unknown route answered 200", exchange("GET", "/api/v1/nope", "", 200, "application/json", `{}`), "no path of the document matches"},
		{"a documented path with an undocumented method", exchange("PUT", "/api/v1/cases", "", 200, "application/json", `{}`), "has the path but not the method"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.ex, true)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("want valid, got %v", err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("want an error with %q, got none", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("want an error with %q, got %v", tc.wantErr, err)
			}
		})
	}
}

func TestValidateWebhook(t *testing.T) {
	h := http.Header{"Content-Type": {"application/json"}, "Webhook-Id": {"ntf_1"}, "Webhook-Timestamp": {"1800000000"}, "Webhook-Signature": {"v1,x"}}
	body := `{"type":"dispute.created","id":"ntf_1","at":"2026-12-02T10:00:00Z","data":{"case_id":"case_1","amount":null}}`
	if err := ValidateWebhook("notification", h, []byte(body)); err != nil {
		t.Fatalf("valid delivery: %v", err)
	}
	if err := ValidateWebhook("notification", h, []byte(`{"type":"nope","id":"ntf_1","at":"x","data":{}}`)); err == nil {
		t.Fatal("an unknown type and a bad time passed")
	}
	h.Del("Webhook-Signature")
	if err := ValidateWebhook("notification", h, []byte(body)); err == nil || !strings.Contains(err.Error(), "webhook-signature") {
		t.Fatalf("unsigned delivery: %v", err)
	}
}
