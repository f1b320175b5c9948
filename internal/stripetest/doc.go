// Package stripetest generates realistic, Stripe-shaped webhook traffic for
// tests, demos and benchmarks of the subscription/dispute case manager.
//
// Everything is rendered for API version 2023-10-16, the version stripe-go v76
// speaks, so generated payloads pass webhook.ConstructEvent and unmarshal into
// the stripe-go structs.
//
// The package has four layers:
//
//   - Object builders (Generator.Customer, Generator.Subscription,
//     Generator.Invoice, Generator.Charge, Generator.Refund, Generator.Dispute,
//     Generator.EarlyFraudWarning) return map[string]any values with the JSON
//     shape and id prefixes Stripe uses, so tests can tweak any field before
//     wrapping it in an event.
//   - NewEvent wraps an object in the event envelope Stripe POSTs to webhook
//     endpoints and encodes it the way Stripe does: pretty-printed, "id" and
//     "object" first, then the other keys in alphabetical order.
//   - SignedHeader and NewWebhookRequest sign a payload with a webhook secret
//     (the Stripe-Signature header) and build the HTTP request.
//   - Stories (Generator.TrialConverts, Generator.ChargebackLost, ...) simulate
//     one customer of a subscription business over time and return its events
//     in time order. Generator.Mix interleaves many customers' stories and
//     Generator.DistinctEvents produces cheap unique events for intake
//     benchmarks.
//
// A Generator is deterministic for a given seed: the same seed, options and
// calls produce byte-identical payloads. Ids are unique per Generator.
// Generated data never contains a full card number (no run of 13 or more
// digits appears anywhere in a payload).
package stripetest
