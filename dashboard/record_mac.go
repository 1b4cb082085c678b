package dashboard

import (
	"errors"

	"github.com/sessionmon/sessionmon/internal/recordmac"
)

// Session and API token records live in JetStream key-value buckets, which
// anyone allowed to write to NATS can write to. So each record carries a
// MAC (HMAC-SHA256) over every field and the key it is stored under, made
// with the record key (LoadRecordKey), which is never stored in NATS. A
// record whose MAC does not verify (forged, edited, moved to another key,
// made with another record key, or written before records had a MAC) is
// treated as absent: no session, or 401 for a token.

// RecordKeyFile is the file under the data directory that holds the
// dashboard's record key when none is configured. Every dashboard process
// sharing the buckets (serve and sessionmon dashboard) must use the same
// key: the same data directory, or the same dashboard-record-key.
const RecordKeyFile = "dashboard-record.key"

// LoadRecordKey returns the key that authenticates the dashboard's session
// and API token records: secret when set (at least 32 bytes), else the key
// in dataDir/RecordKeyFile, made (32 random bytes, hex, mode 0600) the
// first time. A key file that group or others may read is refused.
// Changing the key signs everyone out and invalidates every API token.
func LoadRecordKey(secret, dataDir string) ([]byte, error) {
	return loadKey(secret, dataDir, RecordKeyFile, "dashboard-record-key", "dashboard record key", true)
}

// errBadMAC is a record whose MAC does not verify.
var errBadMAC = errors.New("record MAC does not verify")

// Domains of the MACs, so a session record can never pass as a token
// record or the reverse.
const (
	sessionMACDomain = "sessionmon dashboard session v1"
	tokenMACDomain   = "sessionmon dashboard api token v1"
)

// recordMAC computes and checks the dashboard's record MACs.
type recordMAC struct{ m *recordmac.MAC }

// newRecordMAC returns a recordMAC with key; a nil key is a random one
// (records then live as long as the process).
func newRecordMAC(key []byte) *recordMAC { return &recordMAC{m: recordmac.New(key)} }

func (m *recordMAC) sum(domain string, fields ...string) []byte { return m.m.Sum(domain, fields...) }

func (m *recordMAC) verify(mac []byte, domain string, fields ...string) bool {
	return m.m.Verify(mac, domain, fields...)
}

var macTime = recordmac.Time

// sessionMACFields are the fields a session's MAC covers, key first.
func sessionMACFields(key string, s session) []string {
	return []string{key, s.User, s.CSRF, macTime(s.Created), macTime(s.LastSeen), macTime(s.AuthAt)}
}

// tokenMACFields are the fields a token's MAC covers, key first.
func tokenMACFields(key string, t apiToken) []string {
	return []string{key, t.Name, t.Role.String(), macTime(t.Created), macTime(t.Expires), t.CreatedBy}
}
