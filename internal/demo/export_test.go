package demo

// AttacksPerKind is attacksPerKind, for the tests of package demo_test,
// which import detect (and detect imports demo).
const AttacksPerKind = attacksPerKind
