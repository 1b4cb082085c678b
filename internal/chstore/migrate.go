package chstore

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// migrationFile matches NNN_name.sql.
var migrationFile = regexp.MustCompile(`^([0-9]{3,})_([a-z0-9_]+)\.sql$`)

// directivePrefix starts a comment line of migration directives.
const directivePrefix = "-- sessionmon:"

// migration is one parsed migration file.
type migration struct {
	version uint32
	name    string // file name without .sql, e.g. "001_create_events"
	body    *template.Template

	// Directives.
	minServer  *Version // skip on older servers
	needs      string   // "retention_days" or "alert_retention_days": skip while it is 0
	repeatable bool     // apply again when the rendered SQL changes
}

// removeTTLServer is the first ClickHouse release with ALTER TABLE ...
// REMOVE TTL.
var removeTTLServer = Version{Major: 20, Minor: 10}

// templateData is what migration templates see.
type templateData struct {
	Database string
	// Cluster is the ClickHouse cluster of WithCluster, "" on a single
	// node. Templates do not read it directly but through Create, Alter,
	// Engine, Distribute and OnCluster (cluster.go), which render exactly
	// the single-node SQL when it is "".
	Cluster            string
	RetentionDays      int
	AlertRetentionDays int
	// LegalHold is true while any subject is under legal hold: the TTL
	// backstop migrations then remove the table TTL, which knows nothing of
	// holds, and put it back once the last hold is lifted.
	LegalHold bool
}

// days returns the value a needs= directive asks for.
func (d templateData) days(needs string) int {
	if needs == "alert_retention_days" {
		return d.AlertRetentionDays
	}
	return d.RetentionDays
}

// loadMigrations parses every NNN_name.sql in the root of fsys, sorted by
// version.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("%w: read migrations: %w", ErrInvalidMigration, err)
	}
	var out []migration
	seen := make(map[uint32]string)
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".sql" {
			continue
		}
		m := migrationFile.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("%w: file name %q: want NNN_name.sql", ErrInvalidMigration, e.Name())
		}
		v, err := strconv.ParseUint(m[1], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%w: file name %q: version: %w", ErrInvalidMigration, e.Name(), err)
		}
		if prev, dup := seen[uint32(v)]; dup {
			return nil, fmt.Errorf("%w: %s and %s share version %d", ErrInvalidMigration, prev, e.Name(), v)
		}
		seen[uint32(v)] = e.Name()
		src, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("%w: read %s: %w", ErrInvalidMigration, e.Name(), err)
		}
		mig, err := parseMigration(uint32(v), strings.TrimSuffix(e.Name(), ".sql"), string(src))
		if err != nil {
			return nil, err
		}
		out = append(out, mig)
	}
	slices.SortFunc(out, func(a, b migration) int { return cmp.Compare(a.version, b.version) })
	return out, nil
}

func parseMigration(version uint32, name, src string) (migration, error) {
	m := migration{version: version, name: name}
	for line := range strings.Lines(src) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), directivePrefix)
		if !ok {
			continue
		}
		for _, d := range strings.Fields(rest) {
			key, val, _ := strings.Cut(d, "=")
			switch {
			case key == "min_server" && val != "":
				v, err := ParseVersion(val)
				if err != nil {
					return migration{}, fmt.Errorf("%w: %s: min_server: %w", ErrInvalidMigration, name, err)
				}
				m.minServer = &v
			case key == "needs" && (val == "retention_days" || val == "alert_retention_days"):
				m.needs = val
			case key == "repeatable" && val == "":
				m.repeatable = true
			default:
				return migration{}, fmt.Errorf("%w: %s: unknown directive %q", ErrInvalidMigration, name, d)
			}
		}
	}
	t, err := template.New(name).Option("missingkey=error").Parse(src)
	if err != nil {
		return migration{}, fmt.Errorf("%w: %s: %w", ErrInvalidMigration, name, err)
	}
	m.body = t
	return m, nil
}

// render executes the template and splits the result into statements:
// comment lines are dropped, and a ';' at the end of a line ends a statement.
func (m migration) render(data templateData) (stmts []string, checksum string, err error) {
	var b bytes.Buffer
	if err := m.body.Execute(&b, data); err != nil {
		return nil, "", fmt.Errorf("%w: render %s: %w", ErrInvalidMigration, m.name, err)
	}
	sum := sha256.Sum256(b.Bytes())
	var cur strings.Builder
	for line := range strings.Lines(b.String()) {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		cur.WriteString(line)
		if strings.HasSuffix(t, ";") {
			if s := strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"); s != "" {
				stmts = append(stmts, s)
			}
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		stmts = append(stmts, s)
	}
	if len(stmts) == 0 {
		return nil, "", fmt.Errorf("%w: %s has no statements", ErrInvalidMigration, m.name)
	}
	return stmts, hex.EncodeToString(sum[:]), nil
}

// skipReason says why m does not apply here, or "" when it does. applied
// says whether m was applied before. A TTL backstop (a needs= migration)
// is suspended while a legal hold is active: it is removed when it was
// applied before and the server can remove it.
func (m migration) skipReason(server Version, data templateData, applied bool) string {
	switch {
	case m.minServer != nil && !server.AtLeast(m.minServer.Major, m.minServer.Minor):
		return "needs clickhouse " + m.minServer.String()
	case m.needs != "" && data.LegalHold && !applied:
		return "legal hold active: no TTL backstop until it is lifted"
	case m.needs != "" && data.LegalHold && !server.AtLeast(removeTTLServer.Major, removeTTLServer.Minor):
		return "legal hold active, but removing the TTL backstop needs clickhouse " + removeTTLServer.String() + ": the TTL still applies to held subjects"
	case m.needs != "" && !data.LegalHold && data.days(m.needs) == 0:
		return "no retention configured"
	}
	return ""
}

// Migrate creates the database and applies the migrations not yet recorded
// in its schema_migrations table, in version order, returning the names of
// those it applied now. A migration whose directives exclude this server or
// configuration is skipped, not recorded, and applied by a later Migrate once
// they hold.
//
// Migrate is safe to run again and from several processes at once: each
// statement is idempotent, "already exists" errors are tolerated, and a
// migration recorded twice by a race collapses to one row (schema_migrations
// is a ReplacingMergeTree keyed on version, read with FINAL). On error it
// returns the names applied before the failing one.
//
// With WithCluster every statement runs ON CLUSTER (see cluster.go), and
// Migrate refuses a database created in the other mode.
func (s *Store) Migrate(ctx context.Context) ([]string, error) {
	migs, err := loadMigrations(s.migrations)
	if err != nil {
		return nil, err
	}
	server, err := s.ServerVersion(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.checkMode(ctx); err != nil {
		return nil, err
	}
	boot, err := templateData{Database: s.db, Cluster: s.cluster}.bootstrap()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidMigration, err)
	}
	if err := s.execTolerant(ctx, boot[0]); err != nil {
		return nil, fmt.Errorf("create database %s: %w", s.db, err)
	}
	if err := s.execTolerant(ctx, boot[1]); err != nil {
		return nil, fmt.Errorf("create %s.schema_migrations: %w", s.db, err)
	}
	done, err := s.appliedMigrations(ctx)
	if err != nil {
		return nil, err
	}
	held, err := s.anyLegalHold(ctx)
	if err != nil {
		return nil, err
	}
	data := templateData{Database: s.db, Cluster: s.cluster, RetentionDays: s.retentionDays, AlertRetentionDays: s.alertRetentionDays, LegalHold: held}
	applied := []string{}
	for _, m := range migs {
		_, wasApplied := done[m.version]
		if reason := m.skipReason(server, data, wasApplied); reason != "" {
			s.logger.InfoContext(ctx, "migration skipped",
				slog.String("migration", m.name), slog.String("reason", reason), slog.String("server_version", server.String()))
			continue
		}
		stmts, checksum, err := m.render(data)
		if err != nil {
			return applied, err
		}
		prev, ok := done[m.version]
		if ok && (!m.repeatable || prev == checksum) {
			continue
		}
		for i, q := range stmts {
			if err := s.execTolerant(ctx, q); err != nil {
				return applied, fmt.Errorf("apply migration %s (statement %d): %w", m.name, i+1, err)
			}
		}
		if err := s.recordMigration(ctx, m, checksum); err != nil {
			return applied, err
		}
		s.logger.InfoContext(ctx, "migration applied", slog.String("migration", m.name), slog.String("database", s.db), slog.String("cluster", s.cluster))
		applied = append(applied, m.name)
	}
	return applied, nil
}

// recordMigration adds m to schema_migrations. It uses a batch because
// ClickHouse 18.16 does not answer a plain INSERT ... VALUES sent as a query
// over the native protocol.
func (s *Store) recordMigration(ctx context.Context, m migration, checksum string) error {
	batch, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.db+".schema_migrations (version, name, checksum, applied_at)")
	if err != nil {
		return fmt.Errorf("record migration %s: %w", m.name, err)
	}
	if err := batch.Append(m.version, m.name, checksum, time.Now().UTC()); err != nil {
		return errors.Join(fmt.Errorf("record migration %s: %w", m.name, err), batch.Abort())
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("record migration %s: %w", m.name, err)
	}
	return nil
}

// appliedMigrations maps each recorded version to its latest checksum.
func (s *Store) appliedMigrations(ctx context.Context) (map[uint32]string, error) {
	rows, err := s.conn.Query(ctx, "SELECT version, checksum FROM "+s.db+".schema_migrations FINAL")
	if err != nil {
		return nil, fmt.Errorf("read %s.schema_migrations: %w", s.db, err)
	}
	defer rows.Close()
	done := make(map[uint32]string)
	for rows.Next() {
		var (
			v   uint32
			sum string
		)
		if err := rows.Scan(&v, &sum); err != nil {
			return nil, fmt.Errorf("scan %s.schema_migrations: %w", s.db, err)
		}
		done[v] = sum
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s.schema_migrations: %w", s.db, err)
	}
	return done, nil
}

// MigrationRecord is one row of schema_migrations.
type MigrationRecord struct {
	Version   uint32
	Name      string
	Checksum  string
	AppliedAt time.Time
}

// MigrationRecords returns the raw rows of schema_migrations, without
// deduplication, ordered by version and time: a test can check that a
// migration was recorded once.
func (s *Store) MigrationRecords(ctx context.Context) ([]MigrationRecord, error) {
	rows, err := s.conn.Query(ctx, "SELECT version, name, checksum, applied_at FROM "+s.db+".schema_migrations ORDER BY version, applied_at")
	if err != nil {
		return nil, fmt.Errorf("read %s.schema_migrations: %w", s.db, err)
	}
	defer rows.Close()
	var out []MigrationRecord
	for rows.Next() {
		var r MigrationRecord
		if err := rows.Scan(&r.Version, &r.Name, &r.Checksum, &r.AppliedAt); err != nil {
			return nil, fmt.Errorf("scan %s.schema_migrations: %w", s.db, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s.schema_migrations: %w", s.db, err)
	}
	return out, nil
}

func (s *Store) execTolerant(ctx context.Context, q string) error {
	if err := s.conn.Exec(ctx, q); err != nil && !isAlreadyExists(err) {
		return err
	}
	return nil
}

// checkMode refuses to migrate a database created in the other mode: a
// single-node store would add plain tables to one node of a cluster, and a
// cluster store would put Distributed tables over a single node's data.
// The events table tells: it is Distributed exactly in cluster mode.
func (s *Store) checkMode(ctx context.Context) error {
	rows, err := s.conn.Query(ctx, "SELECT engine FROM system.tables WHERE database = ? AND name = ?", s.db, TableEvents)
	if err != nil {
		return fmt.Errorf("read engine of %s.%s: %w", s.db, TableEvents, err)
	}
	defer rows.Close()
	engine := ""
	for rows.Next() {
		if err := rows.Scan(&engine); err != nil {
			return fmt.Errorf("read engine of %s.%s: %w", s.db, TableEvents, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read engine of %s.%s: %w", s.db, TableEvents, err)
	}
	return modeError(s.db, s.cluster, engine)
}

// modeError says why a store of cluster ("" on a single node) must not
// migrate database db, whose events table has engine ("" when it does not
// exist yet), or returns nil.
func modeError(db, cluster, engine string) error {
	switch {
	case engine == "":
		return nil
	case cluster == "" && engine == "Distributed":
		return fmt.Errorf("%w: clickhouse-cluster: database %s was created on a cluster (%s.%s is Distributed): set the cluster (SESSIONMON_CLICKHOUSE_CLUSTER)",
			ErrInvalidArgument, db, db, TableEvents)
	case cluster != "" && engine != "Distributed":
		return fmt.Errorf("%w: clickhouse-cluster %s: database %s was created on a single node (%s.%s is %s, not Distributed): unset the cluster, or migrate into a new database",
			ErrInvalidArgument, cluster, db, db, TableEvents, engine)
	}
	return nil
}
