package prismnet_test

import (
	"testing"

	"github.com/photoncloud/photon/internal/testutil"
	"github.com/photoncloud/photon/services/prismnet"
)

// TestOpenAPIMatchesRoutes checks docs/api/openapi/prismnet.yaml against the
// router, both ways. (services/iam's TestOpenAPIEveryServiceDocumentsAuth
// checks every OpenAPI file's bearer scheme, 401s and $refs, this one too.)
func TestOpenAPIMatchesRoutes(t *testing.T) {
	testutil.CheckOpenAPI(t, "prismnet", prismnet.Routes())
}
