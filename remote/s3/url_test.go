package s3

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		in   string
		want Config // Credentials are never parsed
		err  bool
	}{
		{in: "s3:https://s3.example.com/bucket/some/prefix",
			want: Config{Endpoint: "s3.example.com", Secure: true, Bucket: "bucket", Prefix: "some/prefix", Lookup: LookupAuto}},
		{in: "s3:http://127.0.0.1:9000/b",
			want: Config{Endpoint: "127.0.0.1:9000", Bucket: "b", Lookup: LookupAuto}},
		{in: "s3:https://h/b/p/?region=eu-central-1&lookup=dns&ca=/etc/ca.pem",
			want: Config{Endpoint: "h", Secure: true, Bucket: "b", Prefix: "p", Region: "eu-central-1", Lookup: LookupDNS, CAFile: "/etc/ca.pem"}},
		{in: "s3:https://h/b?lookup=path",
			want: Config{Endpoint: "h", Secure: true, Bucket: "b", Lookup: LookupPath}},
		{in: "https://h/b", err: true},
		{in: "s3:ftp://h/b", err: true},
		{in: "s3:https:///b", err: true},
		{in: "s3:https://h/", err: true},
		{in: "s3:https://h/b/p//q", err: true},
		{in: "s3:https://h/b?lookup=sideways", err: true},
		{in: "s3:https://h/b?colour=red", err: true},
		{in: "s3:https://h/b?region=a&region=b", err: true},
		{in: "s3:https://AKIA:topsecret@h/b", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseURL(tt.in)
			if tt.err {
				if !errors.Is(err, ErrBadURL) {
					t.Fatalf("ParseURL = %+v, %v; want ErrBadURL", got, err)
				}
				if strings.Contains(err.Error(), "topsecret") {
					t.Errorf("error %q shows the password", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseURL = %+v; want %+v", got, tt.want)
			}
		})
	}
}

func TestStringRoundTrips(t *testing.T) {
	for _, s := range []string{"s3:https://h:9000/b/p/q", "s3:http://h/b"} {
		c, err := ParseURL(s)
		if err != nil {
			t.Fatal(err)
		}
		if c.String() != s {
			t.Errorf("ParseURL(%q).String() = %q", s, c.String())
		}
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	c := Config{Endpoint: "h", Bucket: "b", Credentials: Credentials{AccessKeyID: "AKIA", SecretAccessKey: "topsecret", SessionToken: "tok3n"}}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		s := fmt.Sprintf(verb, c)
		if strings.Contains(s, "topsecret") || strings.Contains(s, "tok3n") {
			t.Errorf("Sprintf(%q) = %q shows a secret", verb, s)
		}
	}
	for _, in := range []string{"s3:https://AKIA:topsecret@h/b", "s3:https://AKIA:topsecret@h/b%zz"} {
		if r := Redact(in); strings.Contains(r, "topsecret") {
			t.Errorf("Redact(%q) = %q", in, r)
		}
	}
}
