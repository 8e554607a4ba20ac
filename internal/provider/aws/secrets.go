package aws

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/sparkplane/sparkplane/internal/agent/agentapi"
	"github.com/sparkplane/sparkplane/internal/fsutil"
	"github.com/sparkplane/sparkplane/internal/provider"
)

// Parameter names under a cluster's path.
const (
	secretParam = "secret"
	tlsKeyParam = "tls-key"
)

// putParameter stores a SecureString, tagged with its cluster.
func putParameter(ctx context.Context, client *ssm.Client, cluster, name, value string) error {
	_, err := client.PutParameter(ctx, &ssm.PutParameterInput{
		Name: aws.String(ParameterPath(cluster) + name), Value: aws.String(value), Type: ssmtypes.ParameterTypeSecureString,
		Description: aws.String("sparkplane cluster " + cluster),
		Tags:        []ssmtypes.Tag{{Key: aws.String("sparkplane/cluster"), Value: aws.String(cluster)}},
	})
	if err != nil {
		return fmt.Errorf("store %s%s in SSM: %w", ParameterPath(cluster), name, err)
	}
	return nil
}

// getParameter reads a SecureString.
func getParameter(ctx context.Context, client *ssm.Client, cluster, name string) (string, error) {
	out, err := client.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(ParameterPath(cluster) + name), WithDecryption: aws.Bool(true)})
	var nf *ssmtypes.ParameterNotFound
	if errors.As(err, &nf) {
		return "", fmt.Errorf("%s%s is not in SSM: %w", ParameterPath(cluster), name, provider.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("read %s%s from SSM: %w", ParameterPath(cluster), name, err)
	}
	return aws.ToString(out.Parameter.Value), nil
}

// Secret reads the cluster secret from SSM.
func (p *Provider) Secret(ctx context.Context, name string) (string, error) {
	_, cfg, err := p.open(ctx, name)
	if err != nil {
		return "", err
	}
	return getParameter(ctx, ssm.NewFromConfig(cfg), name, secretParam)
}

// AgentHTTPClient is a client that trusts exactly the cluster's agent certificate, which the
// working directory keeps (and S3 has, for other machines).
func (p *Provider) AgentHTTPClient(ctx context.Context, name string) (*http.Client, error) {
	certPEM, err := p.agentCertificate(ctx, name)
	if err != nil {
		return nil, err
	}
	return agentapi.PinnedClient(certPEM)
}

// ScrapeInfo is how a Prometheus reaches the agents: TLS with their certificate, and EC2
// discovery by the cluster's tag for one inside the cluster's network.
func (p *Provider) ScrapeInfo(ctx context.Context, name string) (*provider.ScrapeInfo, error) {
	certPEM, err := p.agentCertificate(ctx, name)
	if err != nil {
		return nil, err
	}
	r, err := p.readRecord(name)
	if err != nil {
		return nil, err
	}
	return &provider.ScrapeInfo{AgentCA: certPEM, ServerName: agentapi.TLSServerName,
		EC2: &provider.EC2Scrape{Region: r.Region, Endpoint: endpointOf(&r.Spec), Port: AgentPort}}, nil
}

// agentCertificate is the certificate every agent of the cluster serves: from the working
// directory, else from the cluster's prefix (and kept).
func (p *Provider) agentCertificate(ctx context.Context, name string) ([]byte, error) {
	certPEM, err := os.ReadFile(filepath.Join(p.dir(name), "agent.crt"))
	if errors.Is(err, os.ErrNotExist) {
		r, rerr := p.readRecord(name)
		if rerr != nil {
			return nil, rerr
		}
		a, aerr := p.artifacts(ctx, r)
		if aerr != nil {
			return nil, aerr
		}
		if certPEM, err = a.get(ctx, "tls/agent.crt"); err == nil {
			err = fsutil.WriteFileAtomic(filepath.Join(p.dir(name), "agent.crt"), certPEM, 0o644)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("the agents' certificate: %w", err)
	}
	return certPEM, nil
}
