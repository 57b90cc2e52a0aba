// pulumi-resource-command: a small stand-in for the pulumi-command provider plugin.
//
// Why this exists: the Go module proxy reachable here does not serve the pulumi-command
// provider module (github.com/pulumi/pulumi-command/provider, or the root module after it
// moved), at any version, so the real plugin cannot be built from the proxy. This program
// speaks the same package ("command") and implements, with the documented semantics of
// pulumi-command 1.x, the parts this project uses:
//
//   - resource command:local:Command (create / update / delete commands, dir, environment,
//     interpreter, stdin, triggers, addPreviousOutputInEnv; outputs stdout and stderr)
//   - function command:local:run
//
// Not implemented (an error says so if a program uses them): the remote (SSH) resources,
// assetPaths / archivePaths. The "logging" input is accepted; output is sent to the engine
// log after the command finishes.
//
// scripts/engine/bootstrap.sh builds it in a throwaway module against github.com/pulumi/pulumi/sdk/v3.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"

	pbempty "google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/cmdutil"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// version is set at build time (-X main.version=...) to the pulumi-command SDK version pinned
// in requirements.txt, because the Python SDK asks the engine for exactly that plugin version.
var version = "0.0.0"

const (
	commandType = "command:local:Command"
	runToken    = "command:local:run"
)

// inputKeys are the inputs of command:local:Command; only these take part in diffs.
var inputKeys = []resource.PropertyKey{
	"create", "update", "delete", "dir", "environment", "interpreter", "stdin", "triggers",
	"logging", "addPreviousOutputInEnv", "assetPaths", "archivePaths",
}

// replaceKeys force a replacement when they change (pulumi-command marks triggers so).
var replaceKeys = map[resource.PropertyKey]bool{"triggers": true}

type server struct {
	pulumirpc.UnimplementedResourceProviderServer
	host *provider.HostClient
}

func main() {
	err := provider.Main("command", func(host *provider.HostClient) (pulumirpc.ResourceProviderServer, error) {
		return &server{host: host}, nil
	})
	if err != nil {
		cmdutil.ExitError(err.Error())
	}
}

var marshalOpts = plugin.MarshalOptions{KeepUnknowns: true, KeepSecrets: true, SkipNulls: true}

func unmarshal(s *structpb.Struct) (resource.PropertyMap, error) {
	if s == nil {
		return resource.PropertyMap{}, nil
	}
	return plugin.UnmarshalProperties(s, marshalOpts)
}

func marshal(m resource.PropertyMap) (*structpb.Struct, error) {
	return plugin.MarshalProperties(m, marshalOpts)
}

// plain strips a secret wrapper; the command needs the underlying value.
func plain(v resource.PropertyValue) resource.PropertyValue {
	for v.IsSecret() {
		v = v.SecretValue().Element
	}
	return v
}

func getString(m resource.PropertyMap, k resource.PropertyKey) string {
	if v, ok := m[k]; ok {
		if v = plain(v); v.IsString() {
			return v.StringValue()
		}
	}
	return ""
}

func getBool(m resource.PropertyMap, k resource.PropertyKey, def bool) bool {
	if v, ok := m[k]; ok {
		if v = plain(v); v.IsBool() {
			return v.BoolValue()
		}
	}
	return def
}

func getStrings(m resource.PropertyMap, k resource.PropertyKey) []string {
	var out []string
	if v, ok := m[k]; ok {
		if v = plain(v); v.IsArray() {
			for _, e := range v.ArrayValue() {
				if e = plain(e); e.IsString() {
					out = append(out, e.StringValue())
				}
			}
		}
	}
	return out
}

func getEnv(m resource.PropertyMap) []string {
	var out []string
	if v, ok := m["environment"]; ok {
		if v = plain(v); v.IsObject() {
			obj := v.ObjectValue()
			keys := make([]string, 0, len(obj))
			for k := range obj {
				keys = append(keys, string(k))
			}
			sort.Strings(keys)
			for _, k := range keys {
				if e := plain(obj[resource.PropertyKey(k)]); e.IsString() {
					out = append(out, k+"="+e.StringValue())
				}
			}
		}
	}
	return out
}

func rejectUnsupported(m resource.PropertyMap) error {
	for _, k := range []resource.PropertyKey{"assetPaths", "archivePaths"} {
		if v, ok := m[k]; ok && !v.IsNull() {
			return fmt.Errorf("%s is not supported by this build of the command provider "+
				"(see scripts/engine/command-provider/main.go)", k)
		}
	}
	return nil
}

// run executes one command the way pulumi-command does: through the interpreter
// (default /bin/sh -c), in dir, with the extra environment, trailing newline trimmed.
func (s *server) run(ctx context.Context, urn resource.URN, command string, props resource.PropertyMap,
	extraEnv []string,
) (string, string, error) {
	interp := getStrings(props, "interpreter")
	if len(interp) == 0 {
		interp = []string{"/bin/sh", "-c"}
	}
	args := append(append([]string{}, interp[1:]...), command)
	cmd := exec.CommandContext(ctx, interp[0], args...)
	cmd.Dir = getString(props, "dir")
	cmd.Env = append(append(os.Environ(), getEnv(props)...), extraEnv...)
	if stdin := getString(props, "stdin"); stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	outS := strings.TrimSuffix(stdout.String(), "\n")
	errS := strings.TrimSuffix(stderr.String(), "\n")
	s.logOutput(ctx, urn, getString(props, "logging"), outS, errS)
	if err != nil {
		return outS, errS, fmt.Errorf("%w: running %q:\nStdout:\n%s\nStderr:\n%s", err, command, outS, errS)
	}
	return outS, errS, nil
}

func (s *server) logOutput(ctx context.Context, urn resource.URN, logging, stdout, stderr string) {
	if s.host == nil {
		return
	}
	if logging == "" {
		logging = "stdoutAndStderr"
	}
	var parts []string
	if stdout != "" && (logging == "stdout" || logging == "stdoutAndStderr") {
		parts = append(parts, stdout)
	}
	if stderr != "" && (logging == "stderr" || logging == "stdoutAndStderr") {
		parts = append(parts, stderr)
	}
	if len(parts) > 0 {
		_ = s.host.Log(ctx, diag.Info, urn, strings.Join(parts, "\n"))
	}
}

func previousOutputEnv(state resource.PropertyMap) []string {
	return []string{
		"PULUMI_COMMAND_STDOUT=" + getString(state, "stdout"),
		"PULUMI_COMMAND_STDERR=" + getString(state, "stderr"),
	}
}

func checkType(t string) error {
	if t != commandType {
		return fmt.Errorf("resource type %q is not implemented by this build of the command provider", t)
	}
	return nil
}

func typeOf(urn string) string {
	if urn == "" {
		return ""
	}
	return string(resource.URN(urn).Type())
}

func (s *server) GetPluginInfo(context.Context, *pbempty.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version}, nil
}

func (s *server) GetSchema(context.Context, *pulumirpc.GetSchemaRequest) (*pulumirpc.GetSchemaResponse, error) {
	return &pulumirpc.GetSchemaResponse{Schema: fmt.Sprintf(`{"name":"command","version":%q}`, version)}, nil
}

func (s *server) CheckConfig(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

func (s *server) DiffConfig(context.Context, *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
}

func (s *server) Configure(context.Context, *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	return &pulumirpc.ConfigureResponse{AcceptSecrets: true}, nil
}

func (s *server) Cancel(context.Context, *pbempty.Empty) (*pbempty.Empty, error) {
	return &pbempty.Empty{}, nil
}

func (s *server) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	if err := checkType(typeOf(req.GetUrn())); err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	if err := rejectUnsupported(news); err != nil {
		return nil, err
	}
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

func (s *server) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	oldsPB := req.GetOldInputs()
	if oldsPB == nil {
		oldsPB = req.GetOlds()
	}
	olds, err := unmarshal(oldsPB)
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	ignored := map[string]bool{}
	for _, k := range req.GetIgnoreChanges() {
		ignored[k] = true
	}
	resp := &pulumirpc.DiffResponse{
		Changes:         pulumirpc.DiffResponse_DIFF_NONE,
		DetailedDiff:    map[string]*pulumirpc.PropertyDiff{},
		HasDetailedDiff: true,
	}
	for _, k := range inputKeys {
		if ignored[string(k)] {
			continue
		}
		o, ook := olds[k]
		n, nok := news[k]
		if ook && o.IsNull() {
			ook = false
		}
		if nok && n.IsNull() {
			nok = false
		}
		if !ook && !nok {
			continue
		}
		if ook && nok && !n.ContainsUnknowns() && o.DeepEquals(n) {
			continue
		}
		kind := pulumirpc.PropertyDiff_UPDATE
		switch {
		case !ook:
			kind = pulumirpc.PropertyDiff_ADD
		case !nok:
			kind = pulumirpc.PropertyDiff_DELETE
		}
		if replaceKeys[k] {
			kind += pulumirpc.PropertyDiff_ADD_REPLACE - pulumirpc.PropertyDiff_ADD
			resp.Replaces = append(resp.Replaces, string(k))
		}
		resp.Diffs = append(resp.Diffs, string(k))
		resp.DetailedDiff[string(k)] = &pulumirpc.PropertyDiff{Kind: kind, InputDiff: true}
		resp.Changes = pulumirpc.DiffResponse_DIFF_SOME
	}
	return resp, nil
}

func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *server) Create(ctx context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	if err := checkType(typeOf(req.GetUrn())); err != nil {
		return nil, err
	}
	props, err := unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	outs := props.Copy()
	if req.GetPreview() {
		outs["stdout"] = resource.MakeComputed(resource.NewStringProperty(""))
		outs["stderr"] = resource.MakeComputed(resource.NewStringProperty(""))
	} else if c := getString(props, "create"); c != "" {
		stdout, stderr, err := s.run(ctx, resource.URN(req.GetUrn()), c, props, nil)
		if err != nil {
			return nil, err
		}
		outs["stdout"], outs["stderr"] = resource.NewStringProperty(stdout), resource.NewStringProperty(stderr)
	} else {
		outs["stdout"], outs["stderr"] = resource.NewStringProperty(""), resource.NewStringProperty("")
	}
	pb, err := marshal(outs)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CreateResponse{Id: newID(), Properties: pb}, nil
}

func (s *server) Read(_ context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	// The provider keeps no external state: what the engine has is the truth.
	return &pulumirpc.ReadResponse{Id: req.GetId(), Properties: req.GetProperties(), Inputs: req.GetInputs()}, nil
}

func (s *server) Update(ctx context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	if err := checkType(typeOf(req.GetUrn())); err != nil {
		return nil, err
	}
	olds, err := unmarshal(req.GetOlds())
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	outs := news.Copy()
	outs["stdout"], outs["stderr"] = olds["stdout"], olds["stderr"]
	// pulumi-command runs "update", or "create" again when there is no "update".
	c := getString(news, "update")
	if c == "" {
		c = getString(news, "create")
	}
	if req.GetPreview() {
		outs["stdout"] = resource.MakeComputed(resource.NewStringProperty(""))
		outs["stderr"] = resource.MakeComputed(resource.NewStringProperty(""))
	} else if c != "" {
		var env []string
		if getBool(news, "addPreviousOutputInEnv", true) {
			env = previousOutputEnv(olds)
		}
		stdout, stderr, err := s.run(ctx, resource.URN(req.GetUrn()), c, news, env)
		if err != nil {
			return nil, err
		}
		outs["stdout"], outs["stderr"] = resource.NewStringProperty(stdout), resource.NewStringProperty(stderr)
	}
	pb, err := marshal(outs)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.UpdateResponse{Properties: pb}, nil
}

func (s *server) Delete(ctx context.Context, req *pulumirpc.DeleteRequest) (*pbempty.Empty, error) {
	if err := checkType(typeOf(req.GetUrn())); err != nil {
		return nil, err
	}
	state, err := unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	if c := getString(state, "delete"); c != "" {
		var env []string
		if getBool(state, "addPreviousOutputInEnv", true) {
			env = previousOutputEnv(state)
		}
		if _, _, err := s.run(ctx, resource.URN(req.GetUrn()), c, state, env); err != nil {
			return nil, err
		}
	}
	return &pbempty.Empty{}, nil
}

func (s *server) Invoke(ctx context.Context, req *pulumirpc.InvokeRequest) (*pulumirpc.InvokeResponse, error) {
	if req.GetTok() != runToken {
		return nil, fmt.Errorf("function %q is not implemented by this build of the command provider", req.GetTok())
	}
	args, err := unmarshal(req.GetArgs())
	if err != nil {
		return nil, err
	}
	if err := rejectUnsupported(args); err != nil {
		return nil, err
	}
	c := getString(args, "command")
	if c == "" {
		return nil, errors.New("command:local:run needs a non-empty \"command\"")
	}
	stdout, stderr, err := s.run(ctx, "", c, args, nil)
	if err != nil {
		return nil, err
	}
	outs := args.Copy()
	outs["stdout"], outs["stderr"] = resource.NewStringProperty(stdout), resource.NewStringProperty(stderr)
	pb, err := marshal(outs)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.InvokeResponse{Return: pb}, nil
}
