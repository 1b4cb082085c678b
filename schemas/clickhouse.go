package schemas

import "embed"

// ClickHouseMigrations holds the ClickHouse migrations, clickhouse/NNN_name.sql,
// applied in version order by internal/chstore. The files are text/template
// templates; see clickhouse/README.md for the placeholders and the header
// directives that make a migration conditional.
//
//go:embed clickhouse/*.sql
var ClickHouseMigrations embed.FS
