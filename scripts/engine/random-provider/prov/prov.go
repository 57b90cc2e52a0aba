// Package prov maps the Terraform random provider onto the Pulumi "random" package.
//
// Why this glue exists: the pulumi-random provider module is not served by the Go module
// proxy reachable here, but its ingredients are (the upstream Terraform provider and
// pulumi-terraform-bridge). scripts/engine/bootstrap.sh builds the plugin from those plus
// this mapping, which reproduces the names the published pulumi_random SDK uses.
package prov

import (
	"context"
	"errors"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"

	pf "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge/tokens"
	"github.com/terraform-providers/terraform-provider-random/shim"
)

// Info builds the mapping. Tokens follow the published SDK: random_password ->
// random:index/randomPassword:RandomPassword.
func Info(version string, metadata []byte) tfbridge.ProviderInfo {
	p := tfbridge.ProviderInfo{
		P:                           pf.ShimProvider(shim.NewProvider()),
		Name:                        "random",
		Version:                     version,
		MetadataInfo:                tfbridge.NewProviderMetadata(metadata),
		EnableAccurateBridgePreview: true,
		EnableRawStateDelta:         true,
		Resources: map[string]*tfbridge.ResourceInfo{
			// random_bytes has no "id" attribute upstream; use its base64 value, as pulumi-random does.
			"random_bytes": {ComputeID: bytesID},
		},
	}
	p.MustComputeTokens(tokens.SingleModule("random_", "index", func(module, name string) (string, error) {
		return tokens.MakeStandard("random")(module, "Random"+name)
	}))
	p.MustApplyAutoAliases()
	return p
}

func bytesID(_ context.Context, state resource.PropertyMap) (resource.ID, error) {
	v, ok := state["base64"]
	if !ok {
		return "", errors.New("random_bytes: no base64 property in state")
	}
	for v.IsSecret() {
		v = v.SecretValue().Element
	}
	if !v.IsString() {
		return "", errors.New("random_bytes: base64 is not a string")
	}
	return resource.ID(v.StringValue()), nil
}
