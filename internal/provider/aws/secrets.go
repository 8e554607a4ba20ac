package aws

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"time"

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

// newCertificate makes the agents' self-signed TLS certificate and key (PEM).
func newCertificate(cluster string, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: agentapi.TLSServerName, Organization: []string{"sparkplane cluster " + cluster}},
		DNSNames:              []string{agentapi.TLSServerName},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // self-signed: it is its own trust anchor
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), nil
}

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
