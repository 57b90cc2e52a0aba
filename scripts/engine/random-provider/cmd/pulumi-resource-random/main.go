// pulumi-resource-random is the plugin; schema.json and bridge-metadata.json are written next
// to this file by the bootstrap (from pulumi-tfgen-random) before it is built.
package main

import (
	"context"
	_ "embed"

	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfbridge"

	"medusa-bg/engine-build/random/prov"
)

//go:embed schema.json
var schema []byte

//go:embed bridge-metadata.json
var metadata []byte

var version = "0.0.0" // set with -X main.version

func main() {
	tfbridge.Main(context.Background(), "random", prov.Info(version, metadata),
		tfbridge.ProviderMetadata{PackageSchema: schema, BridgeMetadata: metadata})
}
