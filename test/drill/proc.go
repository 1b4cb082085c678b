package drill

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// stopTimeout bounds a graceful stop before the process is killed.
const stopTimeout = 20 * time.Second

// Proc is one sessionmon process (a subcommand of the real binary) with
// its own HTTP address for /readyz and /metrics, logging to a file.
type Proc struct {
	// Name is the subcommand, e.g. "ingest".
	Name string
	// HTTPAddr is where it serves /metrics and /readyz.
	HTTPAddr string
	bin      string
	args     []string
	env      []string
	logPath  string
	cmd      *exec.Cmd
	done     chan error
}

// NewProc prepares `bin name args... --metrics-addr <free port>` with its log
// in dir/<name>.log (appended to across restarts).
func NewProc(bin, dir, name string, env []string, args ...string) (*Proc, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	return &Proc{
		Name: name, HTTPAddr: addr, bin: bin, env: env,
		args:    append(append([]string{name}, args...), "--metrics-addr", addr),
		logPath: filepath.Join(dir, name+".log"),
	}, nil
}

// Start starts the process.
func (p *Proc) Start() error {
	logf, err := os.OpenFile(p.logPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("%s log: %w", p.Name, err)
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	p.cmd = cmd
	p.done = make(chan error, 1)
	go func() {
		p.done <- cmd.Wait()
		logf.Close()
	}()
	return nil
}

// Running reports whether the process was started and has not exited.
func (p *Proc) Running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case err := <-p.done:
		p.done <- err
		return false
	default:
		return true
	}
}

// Kill sends SIGKILL (kill -9) and waits for the process to end.
func (p *Proc) Kill() error {
	if !p.Running() {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill -9 %s: %w", p.Name, err)
	}
	<-p.done
	p.cmd = nil
	return nil
}

// Stop sends SIGTERM and waits for a clean exit, killing the process if it
// takes longer than stopTimeout. It returns the exit error of a process
// that did not exit cleanly.
func (p *Proc) Stop() error {
	if !p.Running() {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop %s: %w", p.Name, err)
	}
	select {
	case err := <-p.done:
		p.cmd = nil
		if err != nil {
			return fmt.Errorf("%s exited: %w", p.Name, err)
		}
		return nil
	case <-time.After(stopTimeout):
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		p.cmd = nil
		return fmt.Errorf("%s: no clean exit within %s, killed", p.Name, stopTimeout)
	}
}

// Ready returns nil when /readyz answers 200.
func (p *Proc) Ready(ctx context.Context) error {
	if !p.Running() {
		return fmt.Errorf("%s is not running (see %s)", p.Name, p.logPath)
	}
	body, status, err := p.get(ctx, "/readyz")
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("%s /readyz: %d %s", p.Name, status, strings.TrimSpace(body))
	}
	return nil
}

// Metric returns the sum of the samples of a metric family on /metrics
// (every label set), or 0 when it has none.
func (p *Proc) Metric(ctx context.Context, name string) (float64, error) {
	body, status, err := p.get(ctx, "/metrics")
	if err != nil {
		return 0, err
	}
	if status != http.StatusOK {
		return 0, fmt.Errorf("%s /metrics: status %d", p.Name, status)
	}
	return SumMetric(strings.NewReader(body), name)
}

func (p *Proc) get(ctx context.Context, path string) (string, int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.HTTPAddr+path, nil)
	if err != nil {
		return "", 0, fmt.Errorf("%s %s: %w", p.Name, path, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", 0, fmt.Errorf("%s %s: %w", p.Name, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return "", 0, fmt.Errorf("%s %s: read: %w", p.Name, path, err)
	}
	return string(b), resp.StatusCode, nil
}

// Log returns the process's log so far.
func (p *Proc) Log() (string, error) {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return "", fmt.Errorf("%s log: %w", p.Name, err)
	}
	return string(b), nil
}

// SumMetric sums the samples of metric family name in Prometheus text
// format read from r.
func SumMetric(r io.Reader, name string) (float64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var sum float64
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		// The value follows the label set, if any.
		fields := strings.Fields(rest[strings.LastIndex(rest, "}")+1:])
		if len(fields) == 0 {
			return 0, fmt.Errorf("metric %s: malformed line %q", name, line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return 0, fmt.Errorf("metric %s: value %q: %w", name, fields[0], err)
		}
		sum += v
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("metric %s: %w", name, err)
	}
	return sum, nil
}
