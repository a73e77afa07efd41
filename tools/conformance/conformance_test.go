// The whole suite, configured by its own flags (-gateway-class, -conformance-profiles, -supported-features,
// -report-output, ...), which scripts/conformance.ts passes.
package conformance

import (
	"testing"

	"sigs.k8s.io/gateway-api/conformance"
)

func TestConformance(t *testing.T) {
	conformance.RunConformance(t)
}
