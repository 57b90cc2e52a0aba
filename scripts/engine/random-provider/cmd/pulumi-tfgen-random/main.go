// pulumi-tfgen-random generates schema.json and bridge-metadata.json for the plugin; the
// bootstrap runs it once and embeds the result into pulumi-resource-random.
package main

import (
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfgen"

	"medusa-bg/engine-build/random/prov"
)

var version = "0.0.0" // set with -X main.version

func main() { tfgen.Main("random", prov.Info(version, []byte("{}"))) }
