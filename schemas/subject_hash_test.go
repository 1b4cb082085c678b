package schemas

import "testing"

func TestMentionsPseudonym(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		in   string
		want bool
	}{
		{name: "json value", in: `{"subject":"sub_0001"}`, want: true},
		{name: "nats subject", in: "sessionmon.events.3.shop.sub_0001", want: true},
		{name: "whole input", in: "sub_0001", want: true},
		{name: "list", in: `["x","sub_0001"]`, want: true},
		{name: "second occurrence", in: `sub_00012 sub_0001`, want: true},
		{name: "longer pseudonym", in: `{"subject":"sub_00012"}`},
		{name: "prefixed pseudonym", in: `{"subject":"k1:sub_0001"}`},
		{name: "suffix", in: `xsub_0001`},
		{name: "absent", in: `{"subject":"sub_0002"}`},
		{name: "empty", in: ``},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := MentionsPseudonym([]byte(tt.in), "sub_0001"); got != tt.want {
				t.Fatalf("MentionsPseudonym(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
	if MentionsPseudonym([]byte("abc"), "") {
		t.Fatal("an empty pseudonym is never found")
	}
	if got := SubjectHash("sub_0001"); len(got) != len("sha256:")+64 || got[:7] != "sha256:" {
		t.Fatalf("SubjectHash = %q", got)
	}
}
