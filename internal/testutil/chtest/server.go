package chtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/sessionmon/sessionmon/internal/testutil/repo"
)

// Server is a private ClickHouse server for tests that stop and start it
// (outage tests), run by scripts/clickhouse.sh on free loopback ports with
// its files in a temporary directory.
type Server struct {
	t       testing.TB
	script  string
	dir     string
	tcpPort int
	env     []string
}

// StartServer starts a private server; t.Cleanup stops it. Without the
// clickhouse-server binary the test is skipped, or fails when CI=true.
func StartServer(t testing.TB) *Server {
	t.Helper()
	if _, err := exec.LookPath("clickhouse-server"); err != nil {
		msg := "chtest: clickhouse-server is not installed (bash scripts/clickhouse.sh install)"
		if inCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	root, err := repo.Root()
	if err != nil {
		t.Fatalf("chtest: %v", err)
	}
	s := &Server{
		t:       t,
		script:  filepath.Join(root, "scripts", "clickhouse.sh"),
		dir:     t.TempDir(),
		tcpPort: freePort(t),
	}
	s.env = append(os.Environ(),
		"CH_TCP_PORT="+strconv.Itoa(s.tcpPort),
		"CH_HTTP_PORT="+strconv.Itoa(freePort(t)))
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// DSN returns the server's DSN for database db.
func (s *Server) DSN(db string) string {
	return fmt.Sprintf("clickhouse://127.0.0.1:%d/%s?dial_timeout=1s", s.tcpPort, db)
}

// Start starts the server (again) and waits until it answers.
func (s *Server) Start() {
	s.t.Helper()
	s.run("start")
}

// Stop stops the server; its data stays for the next Start.
func (s *Server) Stop() {
	s.t.Helper()
	s.run("stop")
}

func (s *Server) run(verb string) {
	s.t.Helper()
	cmd := exec.Command("bash", s.script, verb, s.dir)
	cmd.Env = s.env
	if out, err := cmd.CombinedOutput(); err != nil {
		s.t.Fatalf("chtest: clickhouse.sh %s: %v\n%s", verb, err, out)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("chtest: free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
