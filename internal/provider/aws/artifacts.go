package aws

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/sparkplane/sparkplane/internal/provider"
	"github.com/sparkplane/sparkplane/internal/spark"
)

// Keys under a cluster's prefix.
const (
	keySpec     = "spec.json"
	keyEndpoint = "endpoint.json"
	keyCert     = "tls/agent.crt"
	keyBinary   = "bin/sparkplane-linux-" // + arch
	keySpark    = "spark/"                // + spark-<v>-bin-hadoop3.tgz
	keyEvents   = "event-logs/"
	keyStopped  = "stopped.json"
)

// Endpoint is what the master's agent publishes once its API answers (endpoint.json).
type Endpoint struct {
	URL        string    `json:"url"`        // from outside: the public address
	PrivateURL string    `json:"privateUrl"` // from the cluster's nodes
	InstanceID string    `json:"instanceId"`
	StartedAt  time.Time `json:"startedAt"`
}

// artifacts are a cluster's objects in S3.
type artifacts struct {
	s3     *s3.Client
	bucket string
	prefix string
}

func newS3(cfg aws.Config) *s3.Client {
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = cfg.BaseEndpoint != nil
		o.DisableLogOutputChecksumValidationSkipped = true // multipart objects carry no whole-object checksum
	})
}

func (p *Provider) artifacts(ctx context.Context, r *record) (*artifacts, error) {
	cfg, err := p.awsConfig(ctx, &r.Spec)
	if err != nil {
		return nil, err
	}
	return &artifacts{s3: newS3(cfg), bucket: r.Bucket, prefix: Prefix(&r.Spec)}, nil
}

func (a *artifacts) put(ctx context.Context, key string, body io.Reader) error {
	// The transfer manager that supersedes this one is still v0.x; this one streams
	// a Spark tarball of unknown length in parts, which PutObject cannot.
	//lint:ignore SA1019 stable until feature/s3/transfermanager reaches v1
	_, err := manager.NewUploader(a.s3).Upload(ctx, &s3.PutObjectInput{Bucket: aws.String(a.bucket), Key: aws.String(a.prefix + key), Body: body})
	if err != nil {
		return fmt.Errorf("upload s3://%s/%s%s: %w", a.bucket, a.prefix, key, err)
	}
	return nil
}

func (a *artifacts) putFile(ctx context.Context, key, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return a.put(ctx, key, f)
}

func (a *artifacts) get(ctx context.Context, key string) ([]byte, error) {
	out, err := a.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(a.bucket), Key: aws.String(a.prefix + key)})
	var nk *s3types.NoSuchKey
	if errors.As(err, &nk) {
		return nil, fmt.Errorf("s3://%s/%s%s: %w", a.bucket, a.prefix, key, provider.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read s3://%s/%s%s: %w", a.bucket, a.prefix, key, err)
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

// endpoint reads what the master's agent published, if it has.
func (a *artifacts) endpoint(ctx context.Context) (*Endpoint, error) {
	b, err := a.get(ctx, keyEndpoint)
	if err != nil {
		return nil, err
	}
	var e Endpoint
	return &e, json.Unmarshal(b, &e)
}

// deleteAll deletes every object under the prefix but those under keep (relative keys).
func (a *artifacts) deleteAll(ctx context.Context, keep ...string) error {
	pages := s3.NewListObjectsV2Paginator(a.s3, &s3.ListObjectsV2Input{Bucket: aws.String(a.bucket), Prefix: aws.String(a.prefix)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		var nb *s3types.NoSuchBucket
		if errors.As(err, &nb) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("list s3://%s/%s: %w", a.bucket, a.prefix, err)
		}
		var ids []s3types.ObjectIdentifier
	objects:
		for _, o := range page.Contents {
			rel := strings.TrimPrefix(aws.ToString(o.Key), a.prefix)
			for _, k := range keep {
				if strings.HasPrefix(rel, k) {
					continue objects
				}
			}
			ids = append(ids, s3types.ObjectIdentifier{Key: o.Key})
		}
		if len(ids) == 0 {
			continue
		}
		if _, err := a.s3.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(a.bucket), Delete: &s3types.Delete{Objects: ids, Quiet: aws.Bool(true)}}); err != nil {
			return fmt.Errorf("delete objects of s3://%s/%s: %w", a.bucket, a.prefix, err)
		}
	}
	return nil
}

// createBucket makes a private, encrypted bucket for a cluster that names none.
func createBucket(ctx context.Context, client *s3.Client, cluster, region string) (string, error) {
	suffix := make([]byte, 4)
	rand.Read(suffix)
	name := fmt.Sprintf("sparkplane-%s-%s", cluster, hex.EncodeToString(suffix))
	in := &s3.CreateBucketInput{Bucket: aws.String(name)}
	if region != "us-east-1" {
		in.CreateBucketConfiguration = &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(region)}
	}
	if _, err := client.CreateBucket(ctx, in); err != nil {
		return "", fmt.Errorf("create bucket %s: %w", name, err)
	}
	steps := []func() error{
		func() error {
			_, err := client.PutPublicAccessBlock(ctx, &s3.PutPublicAccessBlockInput{Bucket: aws.String(name), PublicAccessBlockConfiguration: &s3types.PublicAccessBlockConfiguration{
				BlockPublicAcls: aws.Bool(true), BlockPublicPolicy: aws.Bool(true), IgnorePublicAcls: aws.Bool(true), RestrictPublicBuckets: aws.Bool(true)}})
			return err
		},
		func() error {
			_, err := client.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{Bucket: aws.String(name), ServerSideEncryptionConfiguration: &s3types.ServerSideEncryptionConfiguration{
				Rules: []s3types.ServerSideEncryptionRule{{ApplyServerSideEncryptionByDefault: &s3types.ServerSideEncryptionByDefault{SSEAlgorithm: s3types.ServerSideEncryptionAes256}}}}})
			return err
		},
		func() error {
			_, err := client.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{Bucket: aws.String(name), Tagging: &s3types.Tagging{TagSet: []s3types.Tag{
				{Key: aws.String("sparkplane/cluster"), Value: aws.String(cluster)}, {Key: aws.String("sparkplane/managed-by"), Value: aws.String("sparkplane")}}}})
			return err
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return name, fmt.Errorf("set up bucket %s: %w", name, err)
		}
	}
	return name, nil
}

// deleteBucket empties and removes a bucket sparkplane made.
func deleteBucket(ctx context.Context, client *s3.Client, name string) error {
	a := &artifacts{s3: client, bucket: name}
	if err := a.deleteAll(ctx); err != nil {
		return err
	}
	_, err := client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(name)})
	if err != nil && !isAPIError(err, "NoSuchBucket") {
		return fmt.Errorf("delete bucket %s: %w", name, err)
	}
	return nil
}

// uploadSpark puts the Spark distribution's tarball under the prefix: the verified download when
// there is one, else the unpacked home packed again.
func (a *artifacts) uploadSpark(ctx context.Context, d *spark.Distribution, version string) error {
	key := keySpark + spark.TarballName(version)
	if d.Tarball != "" {
		return a.putFile(ctx, key, d.Tarball)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(spark.Pack(pw, d.Home, version)) }()
	return a.put(ctx, key, pr)
}

func jsonBody(v any) io.Reader {
	b, _ := json.MarshalIndent(v, "", "  ")
	return bytes.NewReader(b)
}
