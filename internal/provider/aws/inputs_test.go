package aws

import "testing"

func TestArchitecture(t *testing.T) {
	for _, tc := range []struct {
		types []string
		want  string
	}{
		{[]string{"m5.xlarge", "m5a.xlarge", "m6i.xlarge", "m7i-flex.large", "g5.xlarge", "inf2.xlarge"}, "x86_64"},
		{[]string{"m6g.xlarge", "m6gd.large", "c7gn.2xlarge", "r8g.large", "t4g.small", "x2gd.xlarge", "im4gn.large", "g5g.xlarge", "a1.large"}, "arm64"},
		{nil, "x86_64"},
	} {
		got, err := Architecture(tc.types...)
		if err != nil || got != tc.want {
			t.Errorf("%v: %q %v, want %q", tc.types, got, err, tc.want)
		}
	}
	if _, err := Architecture("m5.large", "m6g.large"); err == nil {
		t.Error("mixed architectures accepted")
	}
}
