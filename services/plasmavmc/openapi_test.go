package plasmavmc_test

import (
	"testing"

	"github.com/photoncloud/photon/internal/testutil"
	"github.com/photoncloud/photon/services/plasmavmc"
)

// TestOpenAPIMatchesRoutes checks docs/api/openapi/plasmavmc.yaml against
// the router, both ways, so a route added or removed without its
// documentation fails here. (services/iam's
// TestOpenAPIEveryServiceDocumentsAuth checks every OpenAPI file's bearer
// scheme, 401s, body errors and $refs, this one too.)
func TestOpenAPIMatchesRoutes(t *testing.T) {
	testutil.CheckOpenAPI(t, "plasmavmc", plasmavmc.Routes())
}
