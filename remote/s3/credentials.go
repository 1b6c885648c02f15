package s3

import (
	"os"

	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Credentials are static S3 keys. The zero value means "look them up":
// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, then
// MINIO_ROOT_USER / MINIO_ROOT_PASSWORD, then the AWS shared credentials
// file (~/.aws/credentials, AWS_PROFILE). The EC2 instance metadata service
// is not asked: it is a network call that hangs off EC2.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
}

// String never shows the secret, so a Config or Credentials printed by
// mistake (%v, a log attribute) leaks nothing.
func (c Credentials) String() string {
	if c.AccessKeyID == "" {
		return "credentials(from environment)"
	}
	return "credentials(" + c.AccessKeyID + ", secret hidden)"
}

// GoString keeps %#v as safe as %v.
func (c Credentials) GoString() string { return c.String() }

func (c Credentials) provider() *credentials.Credentials {
	if c.AccessKeyID != "" {
		return credentials.NewStaticV4(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)
	}
	return credentials.NewChainCredentials([]credentials.Provider{
		&credentials.EnvAWS{},
		&credentials.EnvMinio{},
		&credentials.FileAWSCredentials{},
	})
}

// regionFromEnv is the region AWS tools use when the URL names none.
func regionFromEnv() string {
	if r := os.Getenv("AWS_REGION"); r != "" {
		return r
	}
	return os.Getenv("AWS_DEFAULT_REGION")
}
