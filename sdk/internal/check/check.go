// Package check holds the few test assertions the SDK's tests use, so that
// the SDK module needs nothing beyond the standard library to test itself.
// Each function fails the test at once (t.Fatal) when its check fails; the
// optional msgAndArgs are a format and its arguments describing the case.
package check

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
)

// T is the part of testing.TB the checks use.
type T interface {
	Helper()
	Fatalf(format string, args ...any)
}

func fail(t T, msgAndArgs []any, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if len(msgAndArgs) > 0 {
		if f, ok := msgAndArgs[0].(string); ok {
			msg = fmt.Sprintf(f, msgAndArgs[1:]...) + ": " + msg
		} else {
			msg = fmt.Sprint(msgAndArgs...) + ": " + msg
		}
	}
	t.Fatalf("%s", msg)
}

// Equal checks that got deeply equals want.
func Equal(t T, want, got any, msgAndArgs ...any) {
	t.Helper()
	if !reflect.DeepEqual(want, got) {
		fail(t, msgAndArgs, "not equal:\nwant: %#v\n got: %#v", want, got)
	}
}

// NotEqual checks that got does not deeply equal other.
func NotEqual(t T, other, got any, msgAndArgs ...any) {
	t.Helper()
	if reflect.DeepEqual(other, got) {
		fail(t, msgAndArgs, "should differ from %#v", other)
	}
}

// True checks that v is true.
func True(t T, v bool, msgAndArgs ...any) {
	t.Helper()
	if !v {
		fail(t, msgAndArgs, "should be true")
	}
}

// False checks that v is false.
func False(t T, v bool, msgAndArgs ...any) {
	t.Helper()
	if v {
		fail(t, msgAndArgs, "should be false")
	}
}

// NoError checks that err is nil.
func NoError(t T, err error, msgAndArgs ...any) {
	t.Helper()
	if err != nil {
		fail(t, msgAndArgs, "unexpected error: %v", err)
	}
}

// ErrorIs checks that errors.Is(err, target).
func ErrorIs(t T, err, target error, msgAndArgs ...any) {
	t.Helper()
	if !errors.Is(err, target) {
		fail(t, msgAndArgs, "error %v is not %v", err, target)
	}
}

// ErrorAs checks that errors.As(err, target).
func ErrorAs(t T, err error, target any, msgAndArgs ...any) {
	t.Helper()
	if !errors.As(err, target) {
		fail(t, msgAndArgs, "error %v is not a %T", err, target)
	}
}

// ErrorContains checks that err is not nil and its message contains s.
func ErrorContains(t T, err error, s string, msgAndArgs ...any) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), s) {
		fail(t, msgAndArgs, "error %v does not contain %q", err, s)
	}
}

// Empty checks that v is nil, zero or has length zero.
func Empty(t T, v any, msgAndArgs ...any) {
	t.Helper()
	if !isEmpty(v) {
		fail(t, msgAndArgs, "should be empty: %#v", v)
	}
}

// NotEmpty checks that v is neither nil, zero nor of length zero.
func NotEmpty(t T, v any, msgAndArgs ...any) {
	t.Helper()
	if isEmpty(v) {
		fail(t, msgAndArgs, "should not be empty")
	}
}

func isEmpty(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Array, reflect.Chan, reflect.Map, reflect.Slice, reflect.String:
		return rv.Len() == 0
	case reflect.Pointer:
		return rv.IsNil() || isEmpty(rv.Elem().Interface())
	default:
		return rv.IsZero()
	}
}

// Nil checks that v is nil (or a nil pointer, map, slice...).
func Nil(t T, v any, msgAndArgs ...any) {
	t.Helper()
	if !isNil(v) {
		fail(t, msgAndArgs, "should be nil: %#v", v)
	}
}

// NotNil checks that v is not nil.
func NotNil(t T, v any, msgAndArgs ...any) {
	t.Helper()
	if isNil(v) {
		fail(t, msgAndArgs, "should not be nil")
	}
}

func isNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Chan, reflect.Func, reflect.Interface, reflect.Map, reflect.Pointer, reflect.Slice:
		return rv.IsNil()
	}
	return false
}

// Len checks that v has length n.
func Len(t T, v any, n int, msgAndArgs ...any) {
	t.Helper()
	if l := reflect.ValueOf(v).Len(); l != n {
		fail(t, msgAndArgs, "length %d, want %d", l, n)
	}
}

// Regexp checks that s matches re, a *regexp.Regexp or a pattern.
func Regexp(t T, re any, s string, msgAndArgs ...any) {
	t.Helper()
	rx, ok := re.(*regexp.Regexp)
	if !ok {
		rx = regexp.MustCompile(fmt.Sprint(re))
	}
	if !rx.MatchString(s) {
		fail(t, msgAndArgs, "%q does not match %s", s, rx)
	}
}

// Contains checks that s contains sub.
func Contains(t T, s, sub string, msgAndArgs ...any) {
	t.Helper()
	if !strings.Contains(s, sub) {
		fail(t, msgAndArgs, "%q does not contain %q", s, sub)
	}
}
