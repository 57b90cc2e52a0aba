// Package shim exposes the upstream SDKv2 provider, whose constructor lives in an internal
// package; this import path sits under the upstream module path, so Go allows the import.
package shim

import (
	"github.com/hashicorp/terraform-plugin-sdk/v2/helper/schema"
	upstream "github.com/terraform-providers/terraform-provider-docker/internal/provider"
)

func NewProvider(version string) *schema.Provider { return upstream.New(version)() }
