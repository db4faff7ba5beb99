// Package manifests checks the files contrib/ ships for Kubernetes nodes and
// clusters (containerd drop-in, RuntimeClasses, node installer): valid
// Kubernetes objects that agree with each other and with palisade.
package manifests

import (
	"bytes"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	toml "github.com/pelletier/go-toml/v2"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"palisade.dev/palisade/libshim/config"
)

// objects decodes a multi-document YAML file strictly (an unknown or
// misspelt field fails) into the API type of each document's kind.
func objects(t *testing.T, path string) []any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []any
	for _, doc := range bytes.Split(data, []byte("\n---\n")) {
		var meta struct{ Kind string }
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		var obj any
		switch meta.Kind {
		case "RuntimeClass":
			obj = &nodev1.RuntimeClass{}
		case "DaemonSet":
			obj = &appsv1.DaemonSet{}
		case "ConfigMap":
			obj = &corev1.ConfigMap{}
		case "Namespace":
			obj = &corev1.Namespace{}
		case "ServiceAccount":
			obj = &corev1.ServiceAccount{}
		case "ClusterRole":
			obj = &rbacv1.ClusterRole{}
		case "ClusterRoleBinding":
			obj = &rbacv1.ClusterRoleBinding{}
		default:
			t.Fatalf("%s: unexpected kind %q", path, meta.Kind)
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			t.Fatalf("%s: %s: %v", path, meta.Kind, err)
		}
		out = append(out, obj)
	}
	return out
}

// handlers reads a containerd drop-in's CRI runtime handlers.
func handlers(t *testing.T, data []byte) map[string]map[string]any {
	t.Helper()
	var d struct {
		Plugins map[string]struct {
			Containerd struct {
				Runtimes map[string]map[string]any `toml:"runtimes"`
			} `toml:"containerd"`
		} `toml:"plugins"`
	}
	if err := toml.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	return d.Plugins["io.containerd.cri.v1.runtime"].Containerd.Runtimes
}

var profileOf = map[string]string{"palisade": "restricted", "palisade-baseline": "baseline", "palisade-locked": "locked"}

func TestClusterFilesAgree(t *testing.T) {
	dropIn, err := os.ReadFile("../../contrib/kubernetes/palisade-runtime.toml")
	if err != nil {
		t.Fatal(err)
	}
	hs := handlers(t, dropIn)
	if len(hs) != len(profileOf) {
		t.Errorf("drop-in handlers %v, want one per profile %v", hs, profileOf)
	}
	for name, h := range hs {
		if h["runtime_type"] != "io.containerd.palisade.v2" || !reflect.DeepEqual(h["pod_annotations"], []any{"palisade.dev/*"}) ||
			!reflect.DeepEqual(h["container_annotations"], []any{"palisade.dev/*"}) {
			t.Errorf("handler %s: %v", name, h)
		}
	}
	// the option-less handler is the one user-namespace pods can use
	if _, ok := hs["palisade"]["options"]; ok {
		t.Error(`handler "palisade" has options: containerd could not run hostUsers: false pods on it`)
	}

	var installer *corev1.ConfigMap
	var ds *appsv1.DaemonSet
	for _, o := range objects(t, "../../contrib/kubernetes/node-installer.yaml") {
		switch o := o.(type) {
		case *corev1.ConfigMap:
			installer = o
		case *appsv1.DaemonSet:
			ds = o
		}
	}
	if installer == nil || ds == nil {
		t.Fatal("node-installer.yaml lacks its ConfigMap or DaemonSet")
	}
	if !reflect.DeepEqual(handlers(t, []byte(installer.Data["palisade-runtime.toml"])), hs) {
		t.Error("the installer's drop-in differs from contrib/kubernetes/palisade-runtime.toml")
	}
	for name, h := range hs {
		file := "config.toml"
		if opts, ok := h["options"].(map[string]any); ok {
			file = strings.TrimPrefix(opts["ConfigPath"].(string), config.DefaultDir+"/")
		}
		body, ok := installer.Data[file]
		if !ok || !strings.Contains(installer.Data["install.sh"], file) {
			t.Errorf("handler %s: the installer does not install %s", name, file)
			continue
		}
		cfg, err := config.Parse(file, []byte(body))
		if err != nil {
			t.Errorf("handler %s: %v", name, err)
		} else if cfg.DefaultProfile != profileOf[name] {
			t.Errorf("handler %s: default profile %s, want %s", name, cfg.DefaultProfile, profileOf[name])
		}
	}
	c := ds.Spec.Template.Spec.Containers[0]
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || !slices.Contains(c.Lifecycle.PreStop.Exec.Command, "/scripts/uninstall.sh") {
		t.Error("the installer does not uninstall on delete (preStop)")
	}
	if ds.Spec.Template.Spec.RuntimeClassName != nil {
		t.Error("the privileged installer must run under the default runtime")
	}
	const label = "palisade.dev/runtime"

	for _, o := range objects(t, "../../contrib/kubernetes/runtimeclass.yaml") {
		rc := o.(*nodev1.RuntimeClass)
		if _, ok := hs[rc.Handler]; !ok || rc.Name != rc.Handler {
			t.Errorf("RuntimeClass %s: handler %q is not in the drop-in", rc.Name, rc.Handler)
		}
		if rc.Overhead == nil || rc.Overhead.PodFixed.Cpu().IsZero() || rc.Overhead.PodFixed.Memory().IsZero() {
			t.Errorf("RuntimeClass %s: no cpu and memory overhead", rc.Name)
		}
		if rc.Scheduling == nil || rc.Scheduling.NodeSelector[label] != "installed" ||
			!strings.Contains(installer.Data["install.sh"], label+"=installed") {
			t.Errorf("RuntimeClass %s: does not schedule on the label the installer sets", rc.Name)
		}
	}
}
