// Package shim exposes the upstream provider constructor, which lives in an internal package.
// Its import path sits under the upstream module's path, so Go allows the internal import.
package shim

import (
	tfpf "github.com/hashicorp/terraform-plugin-framework/provider"
	upstream "github.com/terraform-providers/terraform-provider-random/internal/provider"
)

func NewProvider() tfpf.Provider { return upstream.New() }
