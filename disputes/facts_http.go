package disputes

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/httpx"
	"github.com/recourse-hq/recourse/internal/pan"
)

// Listing limits of GET /customers/:id/facts.
const (
	DefaultFactsListLimit = 1000
	MaxFactsListLimit     = 10000
)

// Register adds the facts and policy-document routes to g, the
// authenticated /api/v1 group:
//
//	POST /customers/:id/facts       keep a batch of facts (≤ 1,000)        facts:write
//	GET  /customers/:id/facts       list (kind, from, to, limit)           facts:read
//	POST /policies                  keep a policy document version         policy_documents:write
//	GET  /policies                  list (optional key)                    policy:read
//	GET  /policies/:key/:version    one version                            policy:read
func (s *FactStore) Register(g *echo.Group) {
	g.POST("/customers/:id/facts", s.handlePutFacts, auth.Require(auth.PermFactsWrite))
	g.GET("/customers/:id/facts", s.handleListFacts, auth.Require(auth.PermFactsRead))
	g.POST("/policies", s.handlePutPolicy, auth.Require(auth.PermPolicyDocsWrite))
	g.GET("/policies", s.handleListPolicies, auth.Require(auth.PermPolicyRead))
	g.GET("/policies/:key/:version", s.handleGetPolicy, auth.Require(auth.PermPolicyRead))
}

// putFactsRequest is the body of POST /customers/:id/facts. Each fact stays
// raw so a malformed one is refused on its own, with its index.
type putFactsRequest struct {
	Facts []json.RawMessage `json:"facts"`
}

func (s *FactStore) handlePutFacts(c echo.Context) error {
	var req putFactsRequest
	if err := httpx.Bind(c, &req); err != nil {
		return err
	}
	if req.Facts == nil {
		return errs.Coded(errs.EINVALID, "facts_required", `the body is {"facts": [...]}`)
	}
	res, err := s.Put(c.Request().Context(), c.Param("id"), req.Facts)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}

var factListParams = map[string]bool{"kind": true, "from": true, "to": true, "limit": true}

// ParseFactQuery reads kind (repeatable or comma-separated), from
// (inclusive), to (exclusive), both RFC 3339, and limit (1–10,000, default
// 1,000) from query parameters, refusing unknown parameters and bad values
// (EINVALID).
func ParseFactQuery(params map[string][]string) (FactQuery, error) {
	q := FactQuery{Limit: DefaultFactsListLimit}
	for k, vs := range params {
		if !factListParams[k] {
			return q, errs.Coded(errs.EINVALID, "invalid_parameter", "unknown query parameter %q (kind, from, to, limit)", pan.Mask(k))
		}
		if k != "kind" && len(vs) > 1 {
			return q, errs.Coded(errs.EINVALID, "invalid_parameter", "query parameter %q given more than once", k)
		}
	}
	for _, v := range params["kind"] {
		for _, k := range strings.Split(v, ",") {
			k = strings.TrimSpace(k)
			if k == "" {
				continue
			}
			if !ValidFactKind(FactKind(k)) {
				return q, errs.Coded(errs.EINVALID, "invalid_parameter", "kind %q is not one of %s", pan.Mask(k), factKindList())
			}
			q.Kinds = append(q.Kinds, FactKind(k))
		}
	}
	for _, b := range []struct {
		name string
		dst  **time.Time
	}{{"from", &q.From}, {"to", &q.To}} {
		v := first(params[b.name])
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return q, errs.Coded(errs.EINVALID, "invalid_parameter", "%s %q is not an RFC 3339 time (e.g. 2026-03-02T10:00:00Z)", b.name, pan.Mask(v))
		}
		t = t.UTC()
		*b.dst = &t
	}
	if q.From != nil && q.To != nil && !q.From.Before(*q.To) {
		return q, errs.Coded(errs.EINVALID, "invalid_parameter", "from must be before to")
	}
	if v := first(params["limit"]); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxFactsListLimit {
			return q, errs.Coded(errs.EINVALID, "invalid_parameter", "limit must be a whole number from 1 to %d", MaxFactsListLimit)
		}
		q.Limit = n
	}
	return q, nil
}

func first(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// factList is the answer of GET /customers/:id/facts: the facts in
// occurred_at order; has_more says the limit cut the list (ask again with
// from set to the last fact's occurred_at, or a larger limit).
type factList struct {
	Facts   []Fact `json:"facts"`
	HasMore bool   `json:"has_more"`
}

func (s *FactStore) handleListFacts(c echo.Context) error {
	q, err := ParseFactQuery(c.QueryParams())
	if err != nil {
		return err
	}
	limit := q.Limit
	q.Limit++
	fs, err := s.Facts(c.Request().Context(), c.Param("id"), q)
	if err != nil {
		return err
	}
	out := factList{Facts: fs, HasMore: len(fs) > limit}
	if out.HasMore {
		out.Facts = fs[:limit]
	}
	if out.Facts == nil {
		out.Facts = []Fact{}
	}
	return c.JSON(http.StatusOK, out)
}

func (s *FactStore) handlePutPolicy(c echo.Context) error {
	var in PolicyInput
	if err := httpx.Bind(c, &in); err != nil {
		return err
	}
	doc, created, err := s.PutPolicy(c.Request().Context(), in)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return c.JSON(status, doc)
}

func (s *FactStore) handleListPolicies(c echo.Context) error {
	for k := range c.QueryParams() {
		if k != "key" {
			return errs.Coded(errs.EINVALID, "invalid_parameter", "unknown query parameter %q (key)", pan.Mask(k))
		}
	}
	docs, err := s.ListPolicies(c.Request().Context(), c.QueryParam("key"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"policies": docs})
}

func (s *FactStore) handleGetPolicy(c echo.Context) error {
	doc, err := s.PolicyDocument(c.Request().Context(), c.Param("key"), c.Param("version"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, doc)
}
