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
// Stopping (see "cancellation, timeouts and process groups" below): each command runs in its
// own process group, killed as a whole on the Cancel RPC, on the operation's customTimeouts
// timeout, or when the engine cancels the request; the operation then fails with a plain
// error, so a cancelled create leaves nothing in the stack's state. Upstream kills only the
// interpreter and can hang on, or leave behind, its background children.
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
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

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
	ops  ops
}

func main() {
	err := provider.Main("command", func(host *provider.HostClient) (pulumirpc.ResourceProviderServer, error) {
		s := &server{host: host}
		s.handleSignals()
		return s, nil
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
// (default /bin/sh -c), in dir, with the extra environment, trailing newline trimmed. It
// stops when ctx is done (engine Cancel, customTimeouts, or the request itself cancelled),
// killing the command's whole process group; see runProcess.
func (s *server) run(ctx context.Context, urn resource.URN, command string, props resource.PropertyMap,
	extraEnv []string,
) (string, string, error) {
	interp := getStrings(props, "interpreter")
	if len(interp) == 0 {
		interp = []string{"/bin/sh", "-c"}
	}
	argv := append(append([]string{}, interp...), command)
	env := append(append(os.Environ(), getEnv(props)...), extraEnv...)
	res, err := s.runProcess(ctx, argv, getString(props, "dir"), env, getString(props, "stdin"))
	outS := strings.TrimSuffix(res.stdout, "\n")
	errS := strings.TrimSuffix(res.stderr, "\n")
	// The request context may be cancelled by now; the log line is still worth sending.
	s.logOutput(context.WithoutCancel(ctx), urn, getString(props, "logging"), outS, errS)
	if err != nil {
		// Same shape as pulumi-command: "<cause>: running "<command>":\n<stdout and stderr
		// interleaved as written>".
		return outS, errS, fmt.Errorf("%w: running %q:\n%s", err, command, res.combined)
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

// previousOutputEnv is what update and delete commands get when addPreviousOutputInEnv is
// on: like pulumi-command, each variable is set only when the previous value is non-empty.
func previousOutputEnv(state resource.PropertyMap) []string {
	var env []string
	if v := getString(state, "stdout"); v != "" {
		env = append(env, "PULUMI_COMMAND_STDOUT="+v)
	}
	if v := getString(state, "stderr"); v != "" {
		env = append(env, "PULUMI_COMMAND_STDERR="+v)
	}
	return env
}

// ---- cancellation, timeouts and process groups -------------------------------------------
//
// pulumi-command (through pulumi-go-provider's cancel middleware) gives every operation a
// context that is cancelled by the Cancel RPC and, when the engine passes a timeout
// (customTimeouts), by a deadline, and runs the command with exec.CommandContext, which kills
// only the interpreter (/bin/sh) and then waits for its output pipes: a background child keeps
// them open, so the operation hangs and the child survives. Here every command runs in its own
// process group; when the context is done the whole group gets SIGTERM, then SIGKILL after
// killGrace, and the operation fails with a plain error (no partial state), so a cancelled or
// timed-out create is not saved to the stack.

// killGrace is how long a process group has to exit after SIGTERM before SIGKILL.
const killGrace = 5 * time.Second

// pipeGrace is how long output is still read after the command's process was reaped during a
// kill (a process outside the group may hold the pipes open; it does not keep us waiting).
const pipeGrace = 2 * time.Second

// stopError is the cause of contexts cancelled by this provider (Cancel RPC, signals).
type stopError struct{ msg string }

func (e stopError) Error() string { return e.msg }

// errCancelled is the cause of contexts cancelled by the Cancel RPC.
var errCancelled = stopError{"cancelled: the engine asked the provider to cancel " +
	"(e.g. Ctrl-C or a signal to pulumi)"}

// timeoutError is the cause of contexts whose customTimeouts deadline passed.
type timeoutError struct{ after time.Duration }

func (e timeoutError) Error() string {
	return fmt.Sprintf("timed out after %s (customTimeouts)", e.after)
}

// ops tracks the contexts of running operations (for Cancel) and the process groups of
// running commands (for the provider's own termination signals).
type ops struct {
	mu        sync.Mutex
	cancelled bool
	next      int
	cancels   map[int]context.CancelCauseFunc
	groups    map[int]bool
}

// begin derives the context of one operation: cancelled by Cancel (also when Cancel came
// first: the engine is shutting down) and, when timeoutSeconds > 0, after that long.
func (s *server) begin(ctx context.Context, timeoutSeconds float64) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	stopTimer := func() bool { return true }
	if timeoutSeconds > 0 {
		after := time.Duration(timeoutSeconds * float64(time.Second))
		timer := time.AfterFunc(after, func() { cancel(timeoutError{after: after}) })
		stopTimer = timer.Stop
	}
	s.ops.mu.Lock()
	if s.ops.cancels == nil {
		s.ops.cancels = map[int]context.CancelCauseFunc{}
	}
	id := s.ops.next
	s.ops.next++
	s.ops.cancels[id] = cancel
	if s.ops.cancelled {
		cancel(errCancelled)
	}
	s.ops.mu.Unlock()
	return ctx, func() {
		stopTimer()
		s.ops.mu.Lock()
		delete(s.ops.cancels, id)
		s.ops.mu.Unlock()
		cancel(context.Canceled)
	}
}

// cancelAll cancels every running operation and every later one.
func (s *server) cancelAll(cause error) {
	s.ops.mu.Lock()
	defer s.ops.mu.Unlock()
	s.ops.cancelled = true
	for _, cancel := range s.ops.cancels {
		cancel(cause)
	}
}

func (s *server) trackGroup(pgid int, running bool) {
	s.ops.mu.Lock()
	defer s.ops.mu.Unlock()
	if s.ops.groups == nil {
		s.ops.groups = map[int]bool{}
	}
	if running {
		s.ops.groups[pgid] = true
	} else {
		delete(s.ops.groups, pgid)
	}
}

// signalGroups sends sig to every tracked process group (0: none, just count them).
func (s *server) signalGroups(sig syscall.Signal) int {
	s.ops.mu.Lock()
	defer s.ops.mu.Unlock()
	for pgid := range s.ops.groups {
		if sig != 0 {
			_ = syscall.Kill(-pgid, sig)
		}
	}
	return len(s.ops.groups)
}

// stopCause says why ctx is done, in words for the error message.
func stopCause(ctx context.Context) error {
	cause := context.Cause(ctx)
	var te timeoutError
	var se stopError
	switch {
	case errors.As(cause, &te), errors.As(cause, &se):
		return cause
	case errors.Is(cause, context.DeadlineExceeded):
		return fmt.Errorf("the engine's deadline for the request passed (%w)", cause)
	default:
		return fmt.Errorf("the engine cancelled the request (%w)", cause)
	}
}

type procResult struct {
	stdout, stderr, combined string
}

// lockedBuffer is the interleaved stdout+stderr copy, written by two goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runProcess starts argv in a new process group and waits, like os/exec with
// exec.Command.Run, for it to exit and for its output pipes to close (so a background child
// that keeps them open is waited for, as upstream does). When ctx is done first, the group is
// killed (SIGTERM, SIGKILL after killGrace) and the error says why.
//
// The pipes are made here rather than by os/exec so that cmd.Wait never waits for output
// copying: after a kill, output still held open by a process that left the group is given up
// after pipeGrace instead of hanging the operation.
func (s *server) runProcess(ctx context.Context, argv []string, dir string, env []string, stdin string,
) (procResult, error) {
	var res procResult
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("%w; the command was not started", stopCause(ctx))
	}
	cmd := exec.Command(argv[0], argv[1:]...) //nolint:gosec // running user commands is the point
	cmd.Dir = dir
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}

	var closeAfterStart, closeAtEnd []*os.File
	defer func() {
		for _, f := range closeAfterStart {
			_ = f.Close()
		}
		for _, f := range closeAtEnd {
			_ = f.Close()
		}
	}()
	outR, outW, err := os.Pipe()
	if err != nil {
		return res, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		_ = outR.Close()
		_ = outW.Close()
		return res, err
	}
	closeAfterStart = append(closeAfterStart, outW, errW)
	closeAtEnd = append(closeAtEnd, outR, errR)
	cmd.Stdout, cmd.Stderr = outW, errW
	var stdinW *os.File
	if stdin != "" {
		inR, inW, err := os.Pipe()
		if err != nil {
			return res, err
		}
		closeAfterStart = append(closeAfterStart, inR)
		closeAtEnd = append(closeAtEnd, inW)
		cmd.Stdin, stdinW = inR, inW
	}

	if err := cmd.Start(); err != nil {
		return res, err
	}
	pgid := cmd.Process.Pid
	s.trackGroup(pgid, true)
	defer s.trackGroup(pgid, false)
	for _, f := range closeAfterStart {
		_ = f.Close()
	}
	closeAfterStart = nil

	if stdinW != nil {
		go func() {
			_, _ = io.WriteString(stdinW, stdin)
			_ = stdinW.Close()
		}()
	}
	var stdoutBuf, stderrBuf bytes.Buffer
	var combined lockedBuffer
	var readers sync.WaitGroup
	readers.Add(2)
	go func() {
		defer readers.Done()
		_, _ = io.Copy(io.MultiWriter(&stdoutBuf, &combined), outR)
	}()
	go func() {
		defer readers.Done()
		_, _ = io.Copy(io.MultiWriter(&stderrBuf, &combined), errR)
	}()
	readersDone := make(chan struct{})
	go func() {
		readers.Wait()
		close(readersDone)
	}()
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()

	var waitErr error
	exited, drained := false, false
	for !exited || !drained {
		select {
		case waitErr = <-waited:
			exited = true
			waited = nil
		case <-readersDone:
			drained = true
			readersDone = nil
		case <-ctx.Done():
			killGroup(pgid)
			if !exited {
				<-waited
			}
			// Output written before the kill is still in the pipes: read it, within bounds.
			if !drained {
				select {
				case <-readersDone:
				case <-time.After(pipeGrace):
				}
			}
			for _, f := range closeAtEnd {
				_ = f.Close()
			}
			closeAtEnd = nil
			readers.Wait()
			return procResult{stdoutBuf.String(), stderrBuf.String(), combined.String()},
				fmt.Errorf("%w; the command's process group was killed", stopCause(ctx))
		}
	}
	return procResult{stdoutBuf.String(), stderrBuf.String(), combined.String()}, waitErr
}

// killGroup sends SIGTERM to the process group, waits up to killGrace for it to be gone,
// then sends SIGKILL.
func killGroup(pgid int) {
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	deadline := time.Now().Add(killGrace)
	for time.Now().Before(deadline) {
		if !groupAlive(pgid) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// groupAlive: is any process of the group still running? Zombies do not count (a member
// orphaned by the kill may never be reaped here, and kill(2) still finds it); where /proc
// cannot tell, any member counts.
func groupAlive(pgid int) bool {
	if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return true
	}
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) >= 3 && f[2] == strconv.Itoa(pgid) && f[0] != "Z" && f[0] != "X" {
			return true
		}
	}
	return false
}

// handleSignals: when the provider itself is told to stop, its commands, which run in their
// own process groups and so do not get the signal, are stopped first. The engine stops a
// plugin with SIGINT to the plugin's process group, then SIGKILL 5 s later; on SIGINT the SDK
// (provider.Main) stops the gRPC server gracefully, which waits for the running operations,
// so they are cancelled here. SIGTERM is then raised again with its default action.
func (s *server) handleSignals() {
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		for sig := range ch {
			s.stopAll(sig)
			if sig == syscall.SIGTERM {
				signal.Reset(syscall.SIGTERM)
				_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
			}
		}
	}()
}

// stopAll cancels every operation (their commands' groups get SIGTERM) and, a second later,
// sends SIGKILL to the groups still running: well before the engine's SIGKILL to this process.
func (s *server) stopAll(sig os.Signal) {
	s.cancelAll(stopError{fmt.Sprintf("cancelled: the command provider got %v (the engine "+
		"is stopping it)", sig)})
	deadline := time.Now().Add(time.Second)
	for s.signalGroups(0) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	s.signalGroups(syscall.SIGKILL)
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

// Cancel: the engine is stopping (Ctrl-C, SIGINT/SIGTERM to pulumi): kill every running
// command's process group; the operations fail, and any started later fail at once.
func (s *server) Cancel(context.Context, *pbempty.Empty) (*pbempty.Empty, error) {
	s.cancelAll(errCancelled)
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
	ctx, end := s.begin(ctx, req.GetTimeout())
	defer end()
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
	ctx, end := s.begin(ctx, req.GetTimeout())
	defer end()
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
	ctx, end := s.begin(ctx, req.GetTimeout())
	defer end()
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
	ctx, end := s.begin(ctx, 0)
	defer end()
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
