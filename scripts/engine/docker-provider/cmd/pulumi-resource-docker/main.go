// pulumi-resource-docker is the plugin; schema.json and bridge-metadata.json are written next
// to this file by the bootstrap (from pulumi-tfgen-docker) before it is built.
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"

	"medusa-bg/engine-build/docker/prov"
)

//go:embed schema.json
var schema []byte

//go:embed bridge-metadata.json
var metadata []byte

var version = "0.0.0" // set with -X main.version

func main() { tfbridge.Main("docker", version, prov.Info(version, metadata), schema) }
