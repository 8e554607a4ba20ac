package aws

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/sparkplane/sparkplane/internal/provider"
)

// eventLogCopy is where this machine keeps its copy of a cluster's event logs: where the local
// provider keeps its own, so that history finds them the same way.
func (p *Provider) eventLogCopy(name string) string {
	return filepath.Join(p.opts.Root, "event-logs", name)
}

// FetchEventLogs copies the cluster's event logs that this machine does not have yet from the
// cluster's prefix, and returns the local directory. Spark's history server here reads local
// files: s3a:// needs Hadoop's S3 connector, which Apache's Spark tarball lacks. Destroy makes a
// last copy before it deletes the bucket, so history works after destroy.
func (p *Provider) FetchEventLogs(ctx context.Context, name string) (string, int, error) {
	dir := p.eventLogCopy(name)
	r, err := p.readRecord(name)
	if errors.Is(err, provider.ErrNotFound) {
		if _, err := os.Stat(dir); err != nil {
			return "", 0, fmt.Errorf("no event logs of %s on this machine (%s): %w", name, dir, provider.ErrNotFound)
		}
		return dir, 0, nil // destroyed: what destroy copied is all there is
	}
	if err != nil {
		return "", 0, err
	}
	a, err := p.artifacts(ctx, r)
	if err != nil {
		return "", 0, err
	}
	n, err := a.copyDown(ctx, keyEvents, dir)
	return dir, n, err
}

// copyDown copies the objects under a key prefix into dir, except those already there with the
// same size, and counts what it copied. A bucket that is gone has nothing to copy.
func (a *artifacts) copyDown(ctx context.Context, key, dir string) (int, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	copied := 0
	pages := s3.NewListObjectsV2Paginator(a.s3, &s3.ListObjectsV2Input{Bucket: aws.String(a.bucket), Prefix: aws.String(a.prefix + key)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		var nb *s3types.NoSuchBucket
		if errors.As(err, &nb) {
			return copied, nil
		}
		if err != nil {
			return copied, fmt.Errorf("list s3://%s/%s%s: %w", a.bucket, a.prefix, key, err)
		}
		for _, o := range page.Contents {
			rel := strings.TrimPrefix(aws.ToString(o.Key), a.prefix+key)
			if !eventLogName(rel) {
				continue // nothing may name a path outside dir
			}
			path := filepath.Join(dir, rel)
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return copied, err
			}
			if st, err := os.Stat(path); err == nil && st.Size() == aws.ToInt64(o.Size) {
				continue
			}
			if err := a.download(ctx, key+rel, path); err != nil {
				return copied, err
			}
			copied++
		}
	}
	return copied, nil
}

// eventLogName accepts what Spark writes into an event log directory: a file (Spark 3.x, and 4.x
// with spark.eventLog.rolling.enabled=false), or a file in one directory of its own (4.x rolls
// event logs by default: eventlog_v2_<app id>/events_1_<app id>.zstd, appstatus_<app id>).
func eventLogName(rel string) bool {
	parts := strings.Split(rel, "/")
	if len(parts) > 2 {
		return false
	}
	for _, p := range parts {
		if p == "" || strings.HasPrefix(p, ".") {
			return false
		}
	}
	return true
}
