package stripe

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
)

// ListEvents calls fn with each event Stripe lists as created in
// [since, until) (GET /v1/events, 100 a page, newest first, paged with
// stripe-go's iterator), as the event's JSON: the shape a webhook delivers,
// which the inbox stores and the worker applies. An error from fn stops
// the listing.
func (c *Client) ListEvents(ctx context.Context, since, until time.Time, fn func(payload []byte) error) error {
	p := &stripego.EventListParams{CreatedRange: &stripego.RangeQueryParams{
		GreaterThanOrEqual: since.Unix(), LesserThan: until.Unix()}}
	p.Context = ctx
	p.Limit = stripego.Int64(100)
	it := c.api.Events.List(p)
	for it.Next() {
		b, err := json.Marshal(it.Event())
		if err != nil {
			return fmt.Errorf("encode event %s: %w", it.Event().ID, err)
		}
		if err := fn(b); err != nil {
			return err
		}
	}
	if err := it.Err(); err != nil {
		return wrap("list events", err)
	}
	return nil
}
