package auth

import (
	"sort"

	"github.com/labstack/echo/v4"

	"github.com/recourse-hq/recourse/internal/errs"
)

// Permission is one thing a role may do. The table below is the whole policy
// of who may do what; handlers ask Require(perm) and nothing else.
type Permission string

// Permissions.
const (
	PermWebhookEventsRead   Permission = "webhook_events:read"
	PermWebhookEventsReplay Permission = "webhook_events:replay"
	PermTokensManage        Permission = "tokens:manage"
	PermUsersManage         Permission = "users:manage" // list, create, change, deactivate users

	PermBillingRead    Permission = "billing:read"    // mirrored objects and timelines
	PermCasesRead      Permission = "cases:read"      // list and view cases
	PermCasesWrite     Permission = "cases:write"     // create, transition, note, assign, escalate, edit
	PermDisputesWork   Permission = "disputes:work"   // evidence, submission, transitions of dispute cases
	PermActionsRequest Permission = "actions:request" // request a case action
	PermDisputeAccept  Permission = "disputes:accept" // accept a dispute (an irreversible loss)
	PermActionsApprove Permission = "actions:approve" // approve or reject another person's action
	PermAuditRead      Permission = "audit:read"
	PermPolicyRead     Permission = "policy:read"
	// Evidence facts are personal data (IPs, device ids): read by those who
	// build dispute evidence; written by the merchant's integration token
	// (an analyst- or admin-role token) and by back-fills.
	PermFactsRead  Permission = "facts:read"
	PermFactsWrite Permission = "facts:write"
	// Policy documents (terms, cancellation, refund) that consent facts cite.
	PermPolicyDocsWrite Permission = "policy_documents:write"
	// Dispute analytics and network-monitoring ratios: a supervisor's view.
	PermDisputesStats Permission = "disputes:stats"
	// The events feed (GET /events): what integrations and supervisors
	// subscribe to (deadline reminders and misses, subscription rules applied).
	PermEventsRead Permission = "events:read"
	// Outbound notifications (Slack, webhooks): their deliveries, and
	// replaying a failed one — supervisors run the desk's alerts.
	PermNotificationsRead   Permission = "notifications:read"
	PermNotificationsReplay Permission = "notifications:replay"
	// The desk's KPIs and reports (GET /reports/{name}): a supervisor's view.
	PermReportsRead Permission = "reports:read"
	// Erasing a customer's personal data (GDPR art. 17): irreversible, so
	// admins only.
	PermCustomersErase Permission = "customers:erase"
)

// grants is read-only after package initialisation.
var grants = map[Permission][]Role{
	PermWebhookEventsRead:   {RoleAdmin},
	PermWebhookEventsReplay: {RoleAdmin},
	PermTokensManage:        {RoleAdmin},
	PermUsersManage:         {RoleAdmin},
	PermBillingRead:         {RoleAgent, RoleAnalyst, RoleSupervisor, RoleAdmin},
	PermCasesRead:           {RoleAgent, RoleAnalyst, RoleSupervisor, RoleAdmin},
	PermCasesWrite:          {RoleAgent, RoleAnalyst, RoleSupervisor, RoleAdmin},
	PermDisputesWork:        {RoleAnalyst, RoleSupervisor, RoleAdmin},
	PermActionsRequest:      {RoleAgent, RoleAnalyst, RoleSupervisor, RoleAdmin},
	PermDisputeAccept:       {RoleAnalyst, RoleSupervisor, RoleAdmin},
	PermActionsApprove:      {RoleSupervisor, RoleAdmin},
	PermAuditRead:           {RoleSupervisor, RoleAdmin},
	PermPolicyRead:          {RoleAgent, RoleAnalyst, RoleSupervisor, RoleAdmin},
	PermFactsRead:           {RoleAnalyst, RoleSupervisor, RoleAdmin},
	PermFactsWrite:          {RoleAnalyst, RoleSupervisor, RoleAdmin},
	PermPolicyDocsWrite:     {RoleSupervisor, RoleAdmin},
	PermDisputesStats:       {RoleSupervisor, RoleAdmin},
	PermEventsRead:          {RoleSupervisor, RoleAdmin},
	PermNotificationsRead:   {RoleSupervisor, RoleAdmin},
	PermNotificationsReplay: {RoleSupervisor, RoleAdmin},
	PermReportsRead:         {RoleSupervisor, RoleAdmin},
	PermCustomersErase:      {RoleAdmin},
}

// unscopedOnly are the permissions a scoped principal never holds, whatever
// their role (README "Scoping"). What they reach cannot be narrowed to a
// scope's teams and business lines — the raw webhook inbox, the audit log,
// the events feed and outbound notifications span every customer; dispute
// statistics carry the networks' monitoring ratios of the whole account
// (reports are narrowed instead: reports.Query.Scope) — or could mint an
// identity wider than the caller's: a scoped admin managing users or
// tokens could issue a token for an unrestricted user, or clear a scope.
var unscopedOnly = map[Permission]bool{
	PermWebhookEventsRead:   true,
	PermWebhookEventsReplay: true,
	PermTokensManage:        true,
	PermUsersManage:         true,
	PermAuditRead:           true,
	PermEventsRead:          true,
	PermNotificationsRead:   true,
	PermNotificationsReplay: true,
	PermDisputesStats:       true,
	// Erasure rewrites every case and timeline of the customer, in scope
	// or not.
	PermCustomersErase: true,
}

// UnscopedOnly reports whether perm is refused to every scoped principal.
func UnscopedOnly(perm Permission) bool { return unscopedOnly[perm] }

// Permits reports whether p may use perm: p's role has it, and p is not
// limited by a scope when perm reaches beyond any scope.
func Permits(p Principal, perm Permission) bool {
	return Allowed(p.Role, perm) && (!unscopedOnly[perm] || p.Scope.Unrestricted())
}

// Allowed reports whether role has perm.
func Allowed(role Role, perm Permission) bool {
	for _, r := range grants[perm] {
		if r == role {
			return true
		}
	}
	return false
}

// Table returns every permission with the roles that hold it, for docs and
// the policy endpoint.
func Table() map[Permission][]Role {
	out := make(map[Permission][]Role, len(grants))
	for p, rs := range grants {
		cp := append([]Role(nil), rs...)
		sort.Slice(cp, func(i, j int) bool { return cp[i] < cp[j] })
		out[p] = cp
	}
	return out
}

// Require refuses the request with 403 unless the principal's role has perm
// (code forbidden) and, for a permission that reaches beyond any scope, the
// principal is unscoped (code scope_restricted).
func Require(perm Permission) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			p, ok := FromContext(c.Request().Context())
			if !ok {
				return errs.New(errs.EUNAUTHORIZED, "authentication required")
			}
			if !Allowed(p.Role, perm) {
				return errs.Coded(errs.EFORBIDDEN, "forbidden", "role %q may not %s", p.Role, perm)
			}
			if unscopedOnly[perm] {
				if err := Unscoped(p); err != nil {
					return err
				}
			}
			return next(c)
		}
	}
}
