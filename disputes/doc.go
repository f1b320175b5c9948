// Package disputes owns Recourse's dispute knowledge and the dispute
// analyst's workbench.
//
// The knowledge base is pure (no I/O, no clock: callers pass now): what a
// card network's reason code means in Stripe's vocabulary, which evidence
// wins a dispute of that kind, what Stripe accepts as evidence, how long is
// left to respond, and whether a Visa 10.4 dispute qualifies for Visa
// Compelling Evidence 3.0.
//
// On top of it, built on cases and billing (never the other way round):
// [FactStore], the evidence facts the merchant's product sends per customer
// and the versioned policy documents consent facts cite; [Workbench], the
// evidence document of a dispute case, the assembled draft and its
// rebuttal packet (PDF), which the actions package submits; the
// [DeadlineSweeper] (reminders and missed deadlines) and [StatsReader]
// (dispute analytics and card-network monitoring).
//
//   - [ReasonForCode] maps a network reason code (Visa 13.2, Mastercard 4841,
//     Amex C28, Discover 4541, …) to Stripe's dispute reason.
//   - [Requirements] returns the [Checklist] of evidence for a dispute, keyed
//     on (brand, network code) and falling back to Stripe's reason.
//   - [ValidateEvidence] enforces Stripe's limits on an evidence hash before
//     it is staged or submitted (evidence is effectively submitted once).
//   - [CE3Eligible] decides Visa CE 3.0 eligibility from mirrored payments.
//
// Stripe's reasons and statuses are open strings: newer API versions add
// values (the noncompliant reason, the prevented status) and nothing here
// breaks on one it does not know — unknown reasons get a generic checklist,
// unknown statuses are treated as possibly needing a response.
//
// The facts come from Stripe's dispute documentation and API reference (the
// evidence limits are those of stripe-mock v0.180.0's OpenAPI spec, which
// matches stripe-go v76 and API 2023-10-16) and from the card networks' reason
// code tables; see the shared DISPUTES.md and DOMAIN.md notes.
package disputes
