// Package prov maps the Terraform docker provider (its SDKv2 part) onto the Pulumi "docker"
// package, with the names the published pulumi_docker 5.x SDK uses.
//
// Why this glue exists: the pulumi-docker provider module is not served by the Go module proxy
// reachable here, but its ingredients are (the upstream kreuzwerker provider, the
// pulumi-terraform-bridge, Pulumi's terraform-plugin-sdk fork). scripts/engine/bootstrap.sh
// builds the plugin from those plus this mapping. Not available: the native docker.Image
// resource (pulumi-docker's own code); use docker.RemoteImage (it can build, too) instead.
package prov

import (
	"context"

	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge/tokens"
	shimv2 "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfshim/sdk-v2"
	"github.com/terraform-providers/terraform-provider-docker/shim"
)

// Info builds the mapping; the overrides below are the ones that change names or behaviour
// visible to a program (tokens, property names, defaults, autonaming).
func Info(version string, metadata []byte) tfbridge.ProviderInfo {
	p := tfbridge.ProviderInfo{
		P:            shimv2.NewProvider(shim.NewProvider(version)),
		Name:         "docker",
		Version:      version,
		GitHubOrg:    "kreuzwerker",
		MetadataInfo: tfbridge.NewProviderMetadata(metadata),
		Config: map[string]*tfbridge.SchemaInfo{
			// Upstream marks host required with a default function; give it a Pulumi default.
			"host": {Default: &tfbridge.DefaultInfo{
				EnvVars: []string{"DOCKER_HOST"},
				ComputeDefault: func(context.Context, tfbridge.ComputeDefaultOptions) (interface{}, error) {
					return "unix:///var/run/docker.sock", nil
				},
			}},
			"registry_auth": {Name: "registryAuth", MaxItemsOne: tfbridge.False()},
		},
		Resources: map[string]*tfbridge.ResourceInfo{
			"docker_config": {Tok: tfbridge.MakeResource("docker", "index", "ServiceConfig")},
			"docker_container": {
				Tok:                 tfbridge.MakeResource("docker", "index", "Container"),
				DeleteBeforeReplace: true,
				Fields: map[string]*tfbridge.SchemaInfo{
					"command":           {Name: "command"},
					"networks_advanced": {Name: "networksAdvanced"},
				},
			},
			"docker_image": {
				Tok:    tfbridge.MakeResource("docker", "index", "RemoteImage"),
				Fields: map[string]*tfbridge.SchemaInfo{"name": {Name: "name"}},
			},
		},
		DataSources: map[string]*tfbridge.DataSourceInfo{
			"docker_image": {Tok: tfbridge.MakeDataSource("docker", "index", "getRemoteImage")},
		},
	}
	p.MustComputeTokens(tokens.SingleModule("docker_", "index", tokens.MakeStandard("docker")))
	p.MustApplyAutoAliases()
	p.SetAutonaming(255, "-")
	return p
}
