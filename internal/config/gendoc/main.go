// Command gendoc writes the table of every option (flag, environment
// variable, YAML key, default, description) into docs/configuration.md,
// between its <!-- options:begin --> and <!-- options:end --> markers.
// Run it from the repository root after changing an option:
//
//	go run ./internal/config/gendoc
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/sessionmon/sessionmon/internal/config"
)

func main() {
	file := flag.String("file", "docs/configuration.md", "Markdown file to update")
	flag.Parse()
	if err := run(*file); err != nil {
		fmt.Fprintf(os.Stderr, "gendoc: %v\n", err)
		os.Exit(1)
	}
}

func run(file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("read %s: %w", file, err)
	}
	out, err := config.UpdateDoc(b)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if err := os.WriteFile(file, out, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	return nil
}
