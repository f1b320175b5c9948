package web

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/errs"
)

// policyNode is one setting of the policy document, or a group of them.
type policyNode struct {
	Key      string
	Value    string
	Children []policyNode
}

// policyTree turns the policy document into nested settings by way of its
// JSON, so the page shows exactly what GET /api/v1/policy returns.
func policyTree(doc any) ([]policyNode, error) {
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("render policy: %w", err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("render policy: %w", err)
	}
	n := toNode("", v)
	return n.Children, nil
}

func toNode(key string, v any) policyNode {
	n := policyNode{Key: strings.ReplaceAll(key, "_", " ")}
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			n.Children = append(n.Children, toNode(k, x[k]))
		}
		if len(keys) == 0 {
			n.Value = "none"
		}
	case []any:
		var scalars []string
		for i, e := range x {
			c := toNode(fmt.Sprint(i+1), e)
			if c.Children != nil {
				n.Children = append(n.Children, c)
			} else {
				scalars = append(scalars, c.Value)
			}
		}
		n.Value = strings.Join(scalars, ", ")
		if len(x) == 0 {
			n.Value = "none"
		}
	case nil:
		n.Value = "not set"
	case bool:
		n.Value = map[bool]string{true: "yes", false: "no"}[x]
	case float64:
		n.Value = strconv.FormatFloat(x, 'f', -1, 64)
	case string:
		n.Value = readableDuration(x)
	default:
		n.Value = fmt.Sprint(x)
	}
	return n
}

// readableDuration writes a Go duration ("168h0m0s") as a person would
// ("7 days"); any other string is returned as it is.
func readableDuration(s string) string {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 || !strings.ContainsAny(s[len(s)-1:], "smh") {
		return s
	}
	unit := func(n int64, one string) string {
		if n == 1 {
			return "1 " + one
		}
		return fmt.Sprintf("%d %ss", n, one)
	}
	switch {
	case d%(24*time.Hour) == 0:
		return unit(int64(d/(24*time.Hour)), "day")
	case d%time.Hour == 0:
		return unit(int64(d/time.Hour), "hour")
	case d%time.Minute == 0:
		return unit(int64(d/time.Minute), "minute")
	case d%time.Second == 0:
		return unit(int64(d/time.Second), "second")
	}
	return s
}

type permissionRow struct {
	Permission auth.Permission
	Roles      []auth.Role
}

type policyPage struct {
	page
	Policy      []policyNode
	Permissions []permissionRow
}

// adminPolicy is GET /admin/policy: the policy in force and who may do
// what, as GET /api/v1/policy returns them.
func (con *Console) adminPolicy(c echo.Context) error {
	pg := policyPage{page: con.basePage(c, "Policy in force")}
	tree, err := policyTree(con.opt.Policy)
	if err != nil {
		return con.fail(c, err)
	}
	if con.opt.Policy != nil {
		pg.Policy = tree
	}
	for p, roles := range auth.Table() {
		pg.Permissions = append(pg.Permissions, permissionRow{Permission: p, Roles: roles})
	}
	sort.Slice(pg.Permissions, func(i, j int) bool { return pg.Permissions[i].Permission < pg.Permissions[j].Permission })
	return con.render(c, http.StatusOK, "admin_policy.html", pg)
}

// auditForm is the audit page's filter form as typed.
type auditForm struct {
	Actor, Action, Case, From, To string
}

type auditPage struct {
	page
	Form    auditForm
	Entries []audit.Entry
	Next    template.URL // the next page, filters kept (built from url.Values)
	// Export downloads the entries these filters select, as CSV.
	Export string
}

// parseAuditTime accepts what GET /api/v1/audit does (RFC 3339) and a
// date (from the form's date inputs). A date as "to" means the end of that
// day, UTC.
func parseAuditTime(name, v string, end bool) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		if end {
			t = t.AddDate(0, 0, 1)
		}
		return t, nil
	}
	return time.Time{}, errs.Coded(errs.EINVALID, "invalid_time", "%s must be a date (2026-11-23) or an RFC 3339 time (2026-11-23T00:00:00Z)", name)
}

// adminAudit is GET /admin/audit: the audit log newest first, filtered
// and keyset-paged by the same query as GET /api/v1/audit.
func (con *Console) adminAudit(c echo.Context) error {
	pg := auditPage{page: con.basePage(c, "Audit log")}
	if con.opt.Audit == nil {
		return con.renderError(c, http.StatusServiceUnavailable, "The audit log is not available on this server.")
	}
	var f audit.Filter
	var err error
	pg.Form, f, err = auditQuery(c.QueryParams())
	pg.Export = "/export/audit.csv"
	if q := pg.Form.values().Encode(); q != "" {
		pg.Export += "?" + q
	}
	if err != nil {
		return con.render(c, con.withError(c, &pg.page, err), "admin_audit.html", pg)
	}
	list, err := con.opt.Audit.List(c.Request().Context(), f, adminPageRequest(c, 50))
	if err != nil {
		return con.render(c, con.withError(c, &pg.page, err), "admin_audit.html", pg)
	}
	pg.Entries = list.Data
	if list.NextCursor != nil {
		next := pg.Form.values()
		next.Set("cursor", *list.NextCursor)
		pg.Next = template.URL("/admin/audit?" + next.Encode())
	}
	return con.render(c, http.StatusOK, "admin_audit.html", pg)
}
