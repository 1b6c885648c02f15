// Package s3 holds the end-to-end tests of replication to S3: against a
// real MinIO started by remote/s3/s3test, through a proxy that injects the
// faults networks and object stores produce, and with the hindsight binary
// killed mid-push.
package s3
