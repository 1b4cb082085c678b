package schemas_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/schemas"
)

// typicalEvent is a login.succeeded with client and auth blocks, compact
// as the SDK publishes it (about 680 bytes).
func typicalEvent(b *testing.B) []byte {
	b.Helper()
	e, err := schemas.Decode(readFixture(b, "valid", "login_succeeded.json"), testNow)
	require.NoError(b, err)
	data, err := schemas.Encode(e)
	require.NoError(b, err)
	return data
}

func BenchmarkDecode(b *testing.B) {
	data := typicalEvent(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := schemas.Decode(data, testNow); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkDecodeRejected measures the slow path that names the field.
func BenchmarkDecodeRejected(b *testing.B) {
	data := readFixture(b, "invalid", "unknown_nested_field.json")
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := schemas.Decode(data, testNow); err == nil {
			b.Fatal("accepted")
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkValidate(b *testing.B) {
	e, err := schemas.Decode(typicalEvent(b), testNow)
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if err := e.Validate(testNow); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkEncode(b *testing.B) {
	e, err := schemas.Decode(typicalEvent(b), testNow)
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := schemas.Encode(e); err != nil {
			b.Fatal(err)
		}
	}
}
