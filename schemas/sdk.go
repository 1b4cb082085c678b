package schemas

import (
	"fmt"
	"time"

	"github.com/sessionmon/sessionmon/sdk"
)

// FromSDK returns the event the Go SDK publishes for ev of app, read as
// ingest reads it: the SDK's JSON (ev.MarshalJSONFor) decoded strictly by
// Decode with now as the receiver's clock. As with the SDK, an empty ID or
// a zero time is filled anew on each call.
func FromSDK(ev *sdk.Event, app string, now time.Time) (*Event, error) {
	data, err := ev.MarshalJSONFor(app)
	if err != nil {
		return nil, fmt.Errorf("sdk event: %w", err)
	}
	e, err := Decode(data, now)
	if err != nil {
		return nil, fmt.Errorf("sdk event %s: %w", data, err)
	}
	return e, nil
}
