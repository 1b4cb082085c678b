package schemas_test

import (
	"bytes"
	"cmp"
	"errors"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/schemas"
)

// want is what the Go error must say about an invalid fixture: the field
// path it names and words of the rule. schemaField, when set, is the field
// the JSON Schema blames instead, for a rule between two fields.
type want struct {
	field       string
	rule        string
	schemaField string
}

// invalidFixtures lists every file of testdata/invalid: each breaks one rule
// that both the JSON Schema and the Go decoder enforce.
var invalidFixtures = map[string]want{
	"missing_id.json":                       {field: "id", rule: "is required"},
	"missing_schema_version.json":           {field: "schema_version", rule: "must be 1"},
	"missing_type.json":                     {field: "type", rule: "is required"},
	"missing_time.json":                     {field: "time", rule: "is required"},
	"missing_app.json":                      {field: "app", rule: "is required"},
	"missing_subject.json":                  {field: "subject", rule: "is required"},
	"id_bad_chars.json":                     {field: "id", rule: "1-64 characters"},
	"id_too_long.json":                      {field: "id", rule: "1-64 characters"},
	"app_bad_chars.json":                    {field: "app", rule: "1-64 characters"},
	"schema_version_2.json":                 {field: "schema_version", rule: "must be 1"},
	"schema_version_string.json":            {field: "schema_version", rule: "must be an integer"},
	"type_unknown.json":                     {field: "type", rule: "must be one of"},
	"type_wrong_case.json":                  {field: "type", rule: "must be one of"},
	"time_without_ms.json":                  {field: "time", rule: "RFC 3339"},
	"time_offset_without_fraction.json":     {field: "time", rule: "RFC 3339"},
	"time_two_digit_fraction.json":          {field: "time", rule: "RFC 3339"},
	"time_ten_digit_fraction.json":          {field: "time", rule: "RFC 3339"},
	"time_no_zone.json":                     {field: "time", rule: "RFC 3339"},
	"time_space_separator.json":             {field: "time", rule: "RFC 3339"},
	"time_lowercase.json":                   {field: "time", rule: "RFC 3339"},
	"time_month_13.json":                    {field: "time", rule: "RFC 3339"},
	"time_hour_24.json":                     {field: "time", rule: "RFC 3339"},
	"time_second_60.json":                   {field: "time", rule: "RFC 3339"},
	"time_offset_hour_24.json":              {field: "time", rule: "RFC 3339"},
	"time_unix_millis.json":                 {field: "time", rule: "must be a string"},
	"unknown_field.json":                    {field: "user_email", rule: "not a field"},
	"unknown_field_case.json":               {field: "Subject", rule: "not a field"},
	"unknown_nested_field.json":             {field: "client.foo", rule: "not a field"},
	"unknown_nested_field_case.json":        {field: "auth.MFA", rule: "not a field"},
	"subject_too_short.json":                {field: "subject", rule: "pseudonym"},
	"subject_email.json":                    {field: "subject", rule: "pseudonym"},
	"subject_too_long.json":                 {field: "subject", rule: "pseudonym"},
	"session_with_space.json":               {field: "session", rule: "pseudonym"},
	"device_too_short.json":                 {field: "client.device", rule: "pseudonym"},
	"ip_hash_raw_address.json":              {field: "client.ip_hash", rule: "pseudonym"},
	"ip_prefix_syntax.json":                 {field: "client.ip_prefix", rule: "CIDR"},
	"ip_prefix_no_bits.json":                {field: "client.ip_prefix", rule: "CIDR"},
	"ip_prefix_leading_zero.json":           {field: "client.ip_prefix", rule: "CIDR"},
	"ip_prefix_bits_leading_zero.json":      {field: "client.ip_prefix", rule: "CIDR"},
	"ip_prefix_ipv6_syntax.json":            {field: "client.ip_prefix", rule: "CIDR"},
	"ip_prefix_ipv6_two_ellipses.json":      {field: "client.ip_prefix", rule: "CIDR"},
	"ip_prefix_ipv6_zone.json":              {field: "client.ip_prefix", rule: "CIDR"},
	"ip_prefix_ipv6_embedded_ipv4.json":     {field: "client.ip_prefix", rule: "embedded IPv4"},
	"ip_prefix_host.json":                   {field: "client.ip_prefix", rule: "/24 or wider"},
	"ip_prefix_ipv4_slash_25.json":          {field: "client.ip_prefix", rule: "/24 or wider"},
	"ip_prefix_ipv6_host.json":              {field: "client.ip_prefix", rule: "/48 or wider"},
	"ip_prefix_ipv6_slash_56.json":          {field: "client.ip_prefix", rule: "/48 or wider"},
	"country_lower_case.json":               {field: "client.country", rule: "ISO 3166"},
	"country_alpha3.json":                   {field: "client.country", rule: "ISO 3166"},
	"lat_out_of_range.json":                 {field: "client.lat", rule: "between -90 and 90"},
	"lon_out_of_range.json":                 {field: "client.lon", rule: "between -180 and 180"},
	"lat_without_lon.json":                  {field: "client.lon", rule: "is required when lat is given"},
	"lon_without_lat.json":                  {field: "client.lat", rule: "is required when lon is given"},
	"lat_string.json":                       {field: "client.lat", rule: "must be a number"},
	"accuracy_negative.json":                {field: "client.accuracy_km", rule: "between 0 and 20038"},
	"city_too_long.json":                    {field: "client.city", rule: "at most 128 characters"},
	"user_agent_too_long.json":              {field: "client.user_agent", rule: "at most 512 characters"},
	"asn_string.json":                       {field: "client.asn", rule: "must be an integer"},
	"asn_negative.json":                     {field: "client.asn", rule: "between 0 and 4294967295"},
	"asn_too_large.json":                    {field: "client.asn", rule: "between 0 and 4294967295"},
	"asn_fraction.json":                     {field: "client.asn", rule: "without a fraction"},
	"mfa_yes.json":                          {field: "auth.mfa", rule: "true or false"},
	"auth_method_too_long.json":             {field: "auth.method", rule: "at most 64 characters"},
	"last_auth_at_without_ms.json":          {field: "auth.last_auth_at", rule: "RFC 3339"},
	"client_not_object.json":                {field: "client", rule: "must be an object"},
	"client_null.json":                      {field: "client", rule: "must not be null"},
	"reason_null.json":                      {field: "reason", rule: "must not be null"},
	"reason_too_long.json":                  {field: "reason", rule: "at most 256 characters"},
	"token_kind_unknown.json":               {field: "token.kind", rule: "must be one of access, refresh, id, api_key"},
	"token_claim_value.json":                {field: "token.claims[1]", rule: "claim name"},
	"token_claim_empty.json":                {field: "token.claims[1]", rule: "claim name"},
	"token_claims_65.json":                  {field: "token.claims", rule: "at most 64"},
	"token_claims_not_array.json":           {field: "token.claims", rule: "must be an array"},
	"token_claim_null.json":                 {field: "token.claims[1]", rule: "must not be null"},
	"token_family_email.json":               {field: "token.family", rule: "pseudonym"},
	"token_parent_short.json":               {field: "token.parent", rule: "pseudonym"},
	"token_expires_at_without_ms.json":      {field: "token.expires_at", rule: "RFC 3339"},
	"token_alg_too_long.json":               {field: "token.alg", rule: "at most 32 characters"},
	"token_kid_too_long.json":               {field: "token.kid", rule: "at most 128 characters"},
	"token_used_without_token_id.json":      {field: "token.id", rule: "is required"},
	"token_revoked_without_token.json":      {field: "token", rule: "is required on token events"},
	"token_issued_short_token_id.json":      {field: "token.id", rule: "pseudonym"},
	"cookie_same_site_bad.json":             {field: "cookie.same_site", rule: "must be one of strict, lax, none"},
	"cookie_secure_string.json":             {field: "cookie.secure", rule: "true or false"},
	"cookie_name_too_long.json":             {field: "cookie.name", rule: "at most 128 characters"},
	"policy_negative.json":                  {field: "policy.idle_timeout_s", rule: "between 0 and 315360000"},
	"policy_over_ten_years.json":            {field: "policy.absolute_timeout_s", rule: "between 0 and 315360000"},
	"policy_reauth_fraction.json":           {field: "policy.reauth_window_s", rule: "without a fraction"},
	"attrs_17_keys.json":                    {field: "attrs", rule: "at most 16 keys"},
	"attrs_value_too_long.json":             {field: "attrs.note", rule: "at most 256 bytes"},
	"attrs_value_number.json":               {field: "attrs.count", rule: "must be a string"},
	"attrs_value_null.json":                 {field: "attrs.route", rule: "must not be null"},
	"attrs_value_object.json":               {field: "attrs.user", rule: "must be a string"},
	"attrs_key_space.json":                  {field: "attrs.user email", rule: "key must be 1-64 characters"},
	"attrs_key_too_long.json":               {field: "attrs.kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk...", rule: "key must be 1-64 characters"},
	"attrs_not_object.json":                 {field: "attrs", rule: "must be an object of strings"},
	"previous_session_on_login.json":        {field: "previous_session", rule: "only on session.started", schemaField: "type"},
	"previous_session_on_activity.json":     {field: "previous_session", rule: "only on session.started", schemaField: "type"},
	"session_started_without_session.json":  {field: "session", rule: "is required"},
	"session_activity_without_session.json": {field: "session", rule: "is required"},
	"session_ended_empty_session.json":      {field: "session", rule: "is required"},
	"action_performed_without_name.json":    {field: "action.name", rule: "is required on action.performed"},
	"action_performed_without_action.json":  {field: "action.name", rule: "is required on action.performed"},
	"action_sensitive_string.json":          {field: "action.sensitive", rule: "true or false"},
	"action_name_too_long.json":             {field: "action.name", rule: "at most 128 characters"},
	"key_retired_without_kid.json":          {field: "key.kid", rule: "is required on key.retired"},
	"key_retired_empty_kid.json":            {field: "key.kid", rule: "is required on key.retired"},
	"key_unknown_field.json":                {field: "key.kty", rule: "not a field"},
	"not_an_object.json":                    {field: "(event)", rule: "must be a JSON object"},
	"string_not_object.json":                {field: "(event)", rule: "must be a JSON object"},
	"empty.json":                            {field: "(event)", rule: "must be a JSON object"},
	"truncated.json":                        {field: "(event)", rule: "must be a JSON object"},
	"trailing_object.json":                  {field: "(event)", rule: "exactly one JSON object"},
	"trailing_garbage.json":                 {field: "(event)", rule: "exactly one JSON object"},
}

// Why a rule is enforced by the Go decoder only.
const (
	reasonClock         = "needs the receiver's clock; a static schema has no now"
	reasonHostBits      = "needs address arithmetic: the pattern checks syntax and width only"
	reasonBytes         = "maxLength counts characters; Go limits bytes, and 200 × é is 200 characters but 400 bytes"
	reasonIntegerSyntax = "JSON Schema integers are mathematical (1.0 and 1e2 are integers, -0 is 0); Go reads integer fields from digits only"
	reasonCalendar      = "the pattern cannot know month lengths (format date-time is an annotation, not asserted, in 2020-12)"
	reasonYearRange     = "in UTC the instant falls outside years 0000-9999, which RFC 3339 cannot write, so Encode could not write it back"
	reasonZeroTime      = "0001-01-01T00:00:00Z is Go's zero time, which Validate reads as an absent time"
	reasonDuplicate     = "a validator sees the parsed object, where the duplicate already replaced the first value; Go rejects it so no two parsers can read different events"
	reasonUTF8          = "a validator sees decoded text, in which encoding/json already replaced the bad bytes with U+FFFD"
)

// goOnlyCase is an event the JSON Schema accepts and the Go decoder must
// reject, with the reason the schema cannot say it.
type goOnlyCase struct {
	file   string // in testdata/go-only, or empty when data is built
	data   []byte
	field  string
	rule   string
	reason string
}

// goOnlyCases lists every rule only Go enforces (see the package doc and
// the schema's description). Each case proves the schema accepts it, so a
// rule the schema learns moves to testdata/invalid.
func goOnlyCases(t *testing.T) []goOnlyCase {
	t.Helper()
	return []goOnlyCase{
		{file: "time_future.json", field: "time", rule: "in the future", reason: reasonClock},
		{file: "ip_prefix_host_bits.json", field: "client.ip_prefix", rule: "host bits", reason: reasonHostBits},
		{file: "ip_prefix_ipv6_host_bits.json", field: "client.ip_prefix", rule: "host bits", reason: reasonHostBits},
		{file: "attrs_value_bytes.json", field: "attrs.note", rule: "at most 256 bytes", reason: reasonBytes},
		{file: "asn_written_as_float.json", field: "client.asn", rule: "without a fraction or exponent", reason: reasonIntegerSyntax},
		{file: "asn_exponent.json", field: "client.asn", rule: "without a fraction or exponent", reason: reasonIntegerSyntax},
		{file: "asn_minus_zero.json", field: "client.asn", rule: "without a minus sign", reason: reasonIntegerSyntax},
		{file: "schema_version_float.json", field: "schema_version", rule: "without a fraction or exponent", reason: reasonIntegerSyntax},
		{file: "time_february_30.json", field: "time", rule: "calendar date", reason: reasonCalendar},
		{file: "token_expires_at_april_31.json", field: "token.expires_at", rule: "calendar date", reason: reasonCalendar},
		{file: "token_issued_at_before_year_0.json", field: "token.issued_at", rule: "between 0000-01-01 and 9999-12-31", reason: reasonYearRange},
		{file: "last_auth_at_after_year_9999.json", field: "auth.last_auth_at", rule: "between 0000-01-01 and 9999-12-31", reason: reasonYearRange},
		{file: "time_zero_instant.json", field: "time", rule: "is required", reason: reasonZeroTime},
		{file: "duplicate_subject.json", field: "subject", rule: "duplicate member name", reason: reasonDuplicate},
		{file: "duplicate_attrs_key.json", field: "attrs.method", rule: "duplicate member name", reason: reasonDuplicate},
		{file: "invalid_utf8.json", field: "reason", rule: "valid UTF-8", reason: reasonUTF8},
		{file: "lone_surrogate_escape.json", field: "reason", rule: "UTF-8", reason: reasonUTF8},
		{
			data:   padTo(t, readFixture(t, "valid", "login_succeeded.json"), schemas.MaxEventBytes+1),
			field:  "(event)",
			rule:   "must be at most 16384 bytes",
			reason: "a schema describes the parsed value, not the size of its encoding",
		},
	}
}

// padTo appends JSON whitespace to data until it is n bytes long.
func padTo(t *testing.T, data []byte, n int) []byte {
	t.Helper()
	require.LessOrEqual(t, len(data), n)
	return append(bytes.Clone(data), bytes.Repeat([]byte(" "), n-len(data))...)
}

// TestFixtures validates every fixture against both the JSON Schema
// (event.v1.schema.json, draft 2020-12) and the Go decoder, so the two
// cannot drift: both accept testdata/valid, both reject testdata/invalid,
// and only Go rejects testdata/go-only, each case with its reason.
func TestFixtures(t *testing.T) {
	t.Parallel()
	_, err := eventSchema()
	require.NoError(t, err, "compile event.v1.schema.json")

	t.Run("valid", func(t *testing.T) {
		t.Parallel()
		for _, fx := range readFixtures(t, "valid") {
			t.Run(fx.name, func(t *testing.T) {
				t.Parallel()
				require.NoError(t, schemaValidate(t, fx.data), "JSON Schema")
				e, err := schemas.Decode(fx.data, testNow)
				require.NoError(t, err, "Go decoder")
				require.NoError(t, e.Validate(testNow))
			})
		}
	})

	t.Run("invalid", func(t *testing.T) {
		t.Parallel()
		fixtures := readFixtures(t, "invalid")
		names := make([]string, 0, len(fixtures))
		for _, fx := range fixtures {
			names = append(names, fx.name)
		}
		listed := make([]string, 0, len(invalidFixtures))
		for name := range invalidFixtures {
			listed = append(listed, name)
		}
		sort.Strings(listed)
		require.Equal(t, listed, names, "testdata/invalid and invalidFixtures must list the same files")

		for _, fx := range fixtures {
			w := invalidFixtures[fx.name]
			t.Run(fx.name, func(t *testing.T) {
				t.Parallel()
				serr := schemaValidate(t, fx.data)
				require.Error(t, serr, "JSON Schema must reject")
				if paths := schemaErrorPaths(serr); paths != nil {
					field := cmp.Or(w.schemaField, w.field)
					require.True(t, slices.ContainsFunc(paths, func(p string) bool { return sameField(field, p) }),
						"the JSON Schema rejects %v, not %s: %v", paths, field, serr)
				}
				_, err := schemas.Decode(fx.data, testNow)
				requireRejects(t, err, w.field, w.rule)
			})
		}
	})

	t.Run("go-only", func(t *testing.T) {
		t.Parallel()
		cases := goOnlyCases(t)
		var files []string
		for _, c := range cases {
			if c.file != "" {
				files = append(files, c.file)
			}
		}
		var names []string
		for _, fx := range readFixtures(t, "go-only") {
			names = append(names, fx.name)
		}
		sort.Strings(files)
		require.Equal(t, files, names, "testdata/go-only and goOnlyCases must list the same files")

		for _, c := range cases {
			name := c.file
			if name == "" {
				name = c.field + " " + c.rule
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				require.NotEmpty(t, c.reason)
				data := c.data
				if c.file != "" {
					data = readFixture(t, "go-only", c.file)
				}
				require.NoError(t, schemaValidate(t, data), "JSON Schema accepts this: %s", c.reason)
				_, err := schemas.Decode(data, testNow)
				requireRejects(t, err, c.field, c.rule)
			})
		}
	})
}

// TestFixtureDirs keeps the fixture sets to .json files, so a fixture
// saved under another name is not silently skipped.
func TestFixtureDirs(t *testing.T) {
	t.Parallel()
	for _, d := range []string{"go-only", "invalid", "valid"} {
		all, err := filepath.Glob(filepath.Join("testdata", d, "*"))
		require.NoError(t, err)
		js, err := filepath.Glob(filepath.Join("testdata", d, "*.json"))
		require.NoError(t, err)
		require.Equal(t, all, js, "testdata/%s holds only .json fixtures", d)
	}
}

// TestValidFixturesCoverEveryType keeps one valid fixture per event type.
func TestValidFixturesCoverEveryType(t *testing.T) {
	t.Parallel()
	seen := map[schemas.Type]bool{}
	for _, fx := range readFixtures(t, "valid") {
		e, err := schemas.Decode(fx.data, testNow)
		require.NoError(t, err, fx.name)
		seen[e.Type] = true
	}
	for _, typ := range schemas.Types {
		require.True(t, seen[typ], "no valid fixture of type %s", typ)
	}
}

// TestInvalidFixturesAreInvalidForOneReason checks that each invalid
// fixture breaks exactly the rule it is named for, so a fixture cannot pass
// by accident through another broken rule.
func TestInvalidFixturesAreInvalidForOneReason(t *testing.T) {
	t.Parallel()
	for _, fx := range readFixtures(t, "invalid") {
		t.Run(fx.name, func(t *testing.T) {
			t.Parallel()
			_, err := schemas.Decode(fx.data, testNow)
			var ve *schemas.ValidationError
			require.True(t, errors.As(err, &ve), "error: %v", err)
			require.Equal(t, []string{invalidFixtures[fx.name].field}, slices.Compact(ve.Fields()), "error: %v", err)
		})
	}
}
