// pulumi-tfgen-docker generates schema.json and bridge-metadata.json for the plugin; the
// bootstrap runs it once and embeds the result into pulumi-resource-docker.
package main

import (
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfgen"

	"medusa-bg/engine-build/docker/prov"
)

var version = "0.0.0" // set with -X main.version

func main() { tfgen.Main("docker", version, prov.Info(version, []byte("{}"))) }
