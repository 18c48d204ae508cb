// talospatch generates a Talos machine config the way the Cluster API bootstrap provider
// Talos (CABPT v0.6.12, controllers/talosconfig_controller.go) does and applies a
// TalosConfig spec's patches to it with Talos' own configpatcher, in CABPT's order: the
// JSON6902 configPatches first, then the strategicPatches. It prints the resulting machine
// config (all documents) on stdout; any error goes to stderr with exit status 1. CABPT stops
// there; a node then validates the config when it loads it, so talospatch validates the
// result too (local mode: nothing that needs the machine itself) and fails on an error.
//
// Input (stdin, JSON):
//
//	{"clusterName": "prod", "endpoint": "https://10.20.0.10:6443",
//	 "kubernetesVersion": "v1.35.0", "podCIDRs": ["10.244.0.0/16"],
//	 "serviceCIDRs": ["10.96.0.0/12"],
//	 "spec": {"generateType": "controlplane", "talosVersion": "v1.12.0",
//	          "configPatches": [...], "strategicPatches": ["..."]}}
//
// spec is a TalosConfig spec as written in a TalosConfigTemplate or a TalosControlPlane's
// controlPlaneConfig.controlplane.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	jsonpatch "github.com/evanphx/json-patch"
	"github.com/siderolabs/talos/pkg/machinery/config"
	"github.com/siderolabs/talos/pkg/machinery/config/configloader"
	"github.com/siderolabs/talos/pkg/machinery/config/configpatcher"
	"github.com/siderolabs/talos/pkg/machinery/config/encoder"
	"github.com/siderolabs/talos/pkg/machinery/config/generate"
	"github.com/siderolabs/talos/pkg/machinery/config/generate/secrets"
	"github.com/siderolabs/talos/pkg/machinery/config/machine"
	"github.com/siderolabs/talos/pkg/machinery/config/validation"
)

// installMode is how a node that installs Talos to disk (a Proxmox VM) validates its config.
type installMode struct{}

func (installMode) String() string        { return "metal" }
func (installMode) RequiresInstall() bool { return true }
func (installMode) InContainer() bool     { return false }

type talosConfigSpec struct {
	GenerateType     string            `json:"generateType"`
	TalosVersion     string            `json:"talosVersion"`
	ConfigPatches    []json.RawMessage `json:"configPatches"`
	StrategicPatches []string          `json:"strategicPatches"`
}

type request struct {
	ClusterName       string          `json:"clusterName"`
	Endpoint          string          `json:"endpoint"`
	KubernetesVersion string          `json:"kubernetesVersion"`
	PodCIDRs          []string        `json:"podCIDRs"`
	ServiceCIDRs      []string        `json:"serviceCIDRs"`
	Spec              talosConfigSpec `json:"spec"`
}

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "talospatch:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	var req request

	decoder := json.NewDecoder(in)
	decoder.DisallowUnknownFields()

	if err := decoder.Decode(&req); err != nil {
		return fmt.Errorf("reading the request: %w", err)
	}

	generated, err := generateConfig(req)
	if err != nil {
		return err
	}

	patched, err := applyPatches(generated, req.Spec)
	if err != nil {
		return err
	}

	if err := validate(patched); err != nil {
		return err
	}

	_, err = io.WriteString(out, patched)

	return err
}

func validate(machineConfig string) error {
	cfg, err := configloader.NewFromBytes([]byte(machineConfig))
	if err != nil {
		return fmt.Errorf("loading the patched config: %w", err)
	}

	warnings, err := cfg.Validate(installMode{}, validation.WithLocal())
	for _, warning := range warnings {
		fmt.Fprintln(os.Stderr, "talospatch: warning:", warning)
	}

	if err != nil {
		return fmt.Errorf("the patched config is invalid: %w", err)
	}

	return nil
}

// generateConfig is CABPT's genConfigs without the Kubernetes objects it reads and writes.
func generateConfig(req request) (string, error) {
	machineType, err := machine.ParseType(req.Spec.GenerateType)
	if err != nil || machineType == machine.TypeUnknown {
		return "", fmt.Errorf("unknown generateType %q", req.Spec.GenerateType)
	}

	if req.Spec.TalosVersion == "" {
		return "", errors.New("talosVersion is required (CABPT would use its own newest contract)")
	}

	contract, err := config.ParseContractFromVersion(req.Spec.TalosVersion)
	if err != nil {
		return "", fmt.Errorf("invalid talosVersion: %w", err)
	}

	bundle, err := secrets.NewBundle(secrets.NewClock(), contract)
	if err != nil {
		return "", fmt.Errorf("generating secrets: %w", err)
	}

	input, err := generate.NewInput(
		req.ClusterName,
		req.Endpoint,
		strings.TrimPrefix(req.KubernetesVersion, "v"),
		generate.WithDNSDomain("cluster.local"),
		generate.WithVersionContract(contract),
		generate.WithSecretsBundle(bundle),
	)
	if err != nil {
		return "", err
	}

	data, err := input.Config(machineType)
	if err != nil {
		return "", err
	}

	if len(req.PodCIDRs) > 0 {
		data.RawV1Alpha1().ClusterConfig.ClusterNetwork.PodSubnet = req.PodCIDRs
	}

	if len(req.ServiceCIDRs) > 0 {
		data.RawV1Alpha1().ClusterConfig.ClusterNetwork.ServiceSubnet = req.ServiceCIDRs
	}

	return data.EncodeString(encoder.WithComments(encoder.CommentsDisabled))
}

// applyPatches is CABPT's reconcileGenerate after the config is generated.
func applyPatches(bootstrapData string, spec talosConfigSpec) (string, error) {
	if len(spec.ConfigPatches) > 0 {
		marshalled, err := json.Marshal(spec.ConfigPatches)
		if err != nil {
			return "", fmt.Errorf("failure marshalling config patches: %w", err)
		}

		patch, err := jsonpatch.DecodePatch(marshalled)
		if err != nil {
			return "", fmt.Errorf("failure decoding config patches to rfc6902 patch: %w", err)
		}

		patched, err := configpatcher.JSON6902([]byte(bootstrapData), patch)
		if err != nil {
			return "", err
		}

		bootstrapData = string(patched)
	}

	if len(spec.StrategicPatches) == 0 {
		return bootstrapData, nil
	}

	patches := make([]configpatcher.Patch, 0, len(spec.StrategicPatches))

	for _, text := range spec.StrategicPatches {
		patch, err := configpatcher.LoadPatch([]byte(text))
		if err != nil {
			return "", fmt.Errorf("failure loading StrategicPatch: %w", err)
		}

		patches = append(patches, patch)
	}

	out, err := configpatcher.Apply(configpatcher.WithBytes([]byte(bootstrapData)), patches)
	if err != nil {
		return "", fmt.Errorf("failure applying StrategicPatches: %w", err)
	}

	cfg, err := out.Config()
	if err != nil {
		return "", fmt.Errorf("failure converting result to bytes: %w", err)
	}

	return cfg.EncodeString(encoder.WithComments(encoder.CommentsDisabled))
}
