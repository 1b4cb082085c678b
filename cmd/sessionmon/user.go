package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/term"

	"github.com/sessionmon/sessionmon/dashboard"
)

func userCommand() *command {
	return &command{
		name:  "user",
		short: "make a dashboard user's config entry (user add NAME --role ROLE)",
		usage: "sessionmon user add NAME --role viewer|analyst|admin [--password-file FILE]",
		summary: `Make the entry of a dashboard user: ask for the password twice on the
terminal without echo (or read it from --password-file, "-" for standard
input; a pipe works too), hash it with argon2id, and print the YAML entry to
paste under dashboard.users in the config file. Nothing is stored: the config
file is the list of users. Passwords shorter than 12 characters are refused.`,
		options: []string{"role", "password-file"},
		words:   true,
		run:     runUser,
	}
}

func runUser(_ context.Context, e *env) error {
	switch {
	case len(e.args) == 0 || e.args[0] != "add":
		return wantWord(e.args[:min(len(e.args), 1)], "add")
	case len(e.args) == 1:
		return usagef("add: missing the user's NAME")
	case len(e.args) > 2:
		return usagef("add: too many arguments")
	}
	name := e.args[1]
	if !dashboard.ValidUserName(name) {
		return fmt.Errorf("NAME: must be 1-64 characters of A-Z a-z 0-9 . _ @ - (got %q)", name)
	}
	role, err := dashboard.ParseRole(e.cfg.UserAdd.Role)
	if err != nil {
		return fmt.Errorf("--role: %w", err)
	}
	password, err := newPassword(e.cfg.UserAdd.PasswordFile, os.Stdin, e.stderr)
	if err != nil {
		return err
	}
	hash, err := dashboard.HashPassword(password)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "# Add under dashboard.users in the config file:\n- name: %s\n  role: %s\n  password_hash: %s\n",
		strconv.Quote(name), role, strconv.Quote(hash))
	return nil
}

// newPassword reads the new user's password: from file ("-": in), else
// from the terminal twice without echo, else the first line of in.
func newPassword(file string, in *os.File, prompt io.Writer) (string, error) {
	var (
		password string
		err      error
	)
	switch {
	case file == "-":
		password, err = firstLine(in)
	case file != "":
		var f *os.File
		if f, err = os.Open(file); err != nil {
			return "", fmt.Errorf("--password-file: %w", err)
		}
		password, err = firstLine(f)
		f.Close()
	case term.IsTerminal(int(in.Fd())):
		password, err = askTwice(int(in.Fd()), prompt)
	default:
		password, err = firstLine(in)
	}
	if err != nil {
		return "", err
	}
	return password, checkPassword(password)
}

func checkPassword(p string) error {
	if n := utf8.RuneCountInString(p); n < dashboard.MinPasswordLength {
		return fmt.Errorf("password: must be at least %d characters (got %d); a passphrase of several words is easy to type and hard to guess", dashboard.MinPasswordLength, n)
	}
	return nil
}

func firstLine(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("password: read: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func askTwice(fd int, prompt io.Writer) (string, error) {
	fmt.Fprint(prompt, "Password: ")
	a, err := term.ReadPassword(fd)
	fmt.Fprintln(prompt)
	if err != nil {
		return "", fmt.Errorf("password: read from terminal: %w", err)
	}
	fmt.Fprint(prompt, "Password again: ")
	b, err := term.ReadPassword(fd)
	fmt.Fprintln(prompt)
	if err != nil {
		return "", fmt.Errorf("password: read from terminal: %w", err)
	}
	if string(a) != string(b) {
		return "", errors.New("password: the two entries differ")
	}
	return string(a), nil
}
