package platform

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/photoncloud/photon/internal/apierr"
	"github.com/photoncloud/photon/internal/auth"
	"github.com/photoncloud/photon/internal/auth/policy"
	"github.com/photoncloud/photon/services/chainfire"
	"github.com/photoncloud/photon/services/iam"
)

// S3CredentialsFile is where, under the data dir, `photon up` keeps the
// bootstrap S3 access key, in the AWS shared-credentials format (mode
// 0600): `aws --profile`, s3cmd and rclone read it as it is.
const S3CredentialsFile = "s3-credentials"

// BootstrapS3Project is the project the bootstrap S3 key works in.
const BootstrapS3Project = "default"

// s3Key is a lifecycle step that makes sure the file holds a live key:
// issued once (an access key of the bootstrap admin in the default
// project), and again only if it was revoked.
type s3Key struct {
	path string
	cf   *chainfire.Server
	iam  *iam.Server
}

func (k *s3Key) Name() string { return "s3-credentials" }

func (k *s3Key) Start(ctx context.Context) error {
	if id := readKeyID(k.path); id != "" {
		if _, err := auth.LookupAccessKey(ctx, k.cf.Client(), id); err == nil {
			return nil
		} else if apierr.CodeOf(err) != apierr.CodeNotFound {
			return err
		}
	}
	c, err := k.iam.Service().CreateCredential(k.cf.Auth().AsBootstrap(ctx), iam.CreateCredentialRequest{
		PrincipalID: policy.BootstrapAdmin, ProjectID: BootstrapS3Project, Description: "photon up's bootstrap S3 key"})
	if err != nil {
		return fmt.Errorf("bootstrap S3 key: %w", err)
	}
	body := fmt.Sprintf("# LightningSTOR's bootstrap key (project %s), written by photon up\n[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n",
		BootstrapS3Project, c.AccessKeyID, c.SecretAccessKey)
	tmp := k.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, k.path)
}

func (k *s3Key) Stop(context.Context) error { return nil }

// readKeyID is the aws_access_key_id a credentials file holds ("" if none).
func readKeyID(path string) string {
	id, _, err := ReadS3Credentials(path)
	if err != nil {
		return ""
	}
	return id
}

// ReadS3Credentials reads the key of an AWS shared-credentials file as
// `photon up` writes it (S3CredentialsFile): for tools, tests and benches.
func ReadS3Credentials(path string) (id, secret string, err error) {
	f, err := os.Open(filepath.Clean(path))
	if err != nil {
		return "", "", fmt.Errorf("S3 credentials: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "aws_access_key_id":
			id = strings.TrimSpace(v)
		case "aws_secret_access_key":
			secret = strings.TrimSpace(v)
		}
	}
	if err := sc.Err(); err != nil {
		return "", "", fmt.Errorf("S3 credentials: %w", err)
	}
	if id == "" || secret == "" {
		return "", "", fmt.Errorf("S3 credentials: no key in %s", path)
	}
	return id, secret, nil
}
