//go:build race

package simulate_test

// raceEnabled reports whether the tests run under the race detector, which
// makes everything several times slower.
const raceEnabled = true
