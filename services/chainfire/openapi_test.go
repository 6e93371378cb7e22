package chainfire_test

import (
	"testing"

	"github.com/photoncloud/photon/internal/testutil"
	"github.com/photoncloud/photon/services/chainfire"
)

// TestOpenAPIMatchesRoutes checks docs/api/openapi/chainfire.yaml against
// the router, both ways.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	testutil.CheckOpenAPI(t, "chainfire", chainfire.Routes())
}
