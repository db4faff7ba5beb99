package critest

import (
	"fmt"
	"os"
	"runtime"
	"strings"

	"palisade.dev/palisade/testing/image"
)

// Mirrored are the registries critest's images come from; containerd sends
// every pull from them to the local Registry.
var Mirrored = []string{"registry.k8s.io", "k8s.gcr.io", "gcr.io", "docker.io"}

// Programs are the host files the images are built from.
type Programs struct {
	Busybox  string // busybox-static
	Pause    string // the pod sandbox's program
	CRIImage string // testing/cmd/criimage, static
}

// passwd and group are busybox's own image's users and groups (www-data is
// 33 there, as the username images expect).
const (
	passwd = "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nbin:x:2:2:bin:/bin:/bin/false\n" +
		"sys:x:3:3:sys:/dev:/bin/false\nwww-data:x:33:33:www-data:/var/www:/bin/false\nnobody:x:65534:65534:nobody:/home:/bin/false\n"
	// pgrep and ipcs stand in for busybox's applets, which Debian's
	// busybox-static lacks (critest checks with them that a timed-out exec is
	// gone, and which shared memory segments a container sees).
	pgrep = `#!/bin/sh
found=1
for d in /proc/[0-9]*; do
	n=$(cat "$d/comm" 2>/dev/null) || continue
	case "$n" in *"$1"*) echo "${d#/proc/}"; found=0 ;; esac
done
exit $found
`
	ipcs  = "#!/bin/sh\ncat /proc/sysvipc/shm\n"
	group = "root:x:0:\ndaemon:x:1:\nbin:x:2:\nsys:x:3:\nwww-data:x:33:\nusers:x:100:\nnogroup:x:65534:\n"
)

// Images returns what critest v1.37.0 pulls (sigs.k8s.io/cri-tools
// pkg/validate consts*.go, pkg/framework), built here: each reference
// (registry/repository:tag) and its image. They are busybox with the
// upstream images' users, marker files and, for the web server, nonewprivs
// and hostnet images, the static criimage program under the name and with
// the PID file of the program it stands for. The upstream digest of
// test-image-digest cannot be rebuilt: that spec fails for every handler.
func Images(p Programs) (map[string]image.Options, error) {
	base := func() image.Options {
		return image.Options{Busybox: p.Busybox, HardLinks: true, Files: map[string]image.File{
			"/etc/passwd": {Body: []byte(passwd), Mode: 0o644},
			"/etc/group":  {Body: []byte(group), Mode: 0o644},
			"/bin/pgrep":  {Body: []byte(pgrep), Mode: 0o755},
			"/bin/ipcs":   {Body: []byte(ipcs), Mode: 0o755},
			"/var/run":    {Link: "/run"},
		}}
	}
	with := func(o image.Options, files map[string]image.File, user string, cmd ...string) image.Options {
		for k, v := range files {
			o.Files[k] = v
		}
		if user != "" {
			o.User = user
		}
		if len(cmd) > 0 {
			o.Cmd = cmd
		}
		return o
	}
	marker := func(name string) map[string]image.File {
		return map[string]image.File{"/" + name: {Mode: 0o644}}
	}
	server := func(path, pidFile, listen string) image.Options {
		o := base()
		o.Programs = map[string]string{path: p.CRIImage}
		o.Cmd = []string{path, "-pid", pidFile, "-listen", listen}
		return o
	}
	const k8s, cri = "registry.k8s.io/e2e-test-images/", "gcr.io/k8s-staging-cri-tools/"
	pause := base()
	pause.Programs, pause.Cmd = map[string]string{"/pause": p.Pause}, []string{"/pause"}
	httpd := server("/usr/local/apache2/bin/httpd", "/usr/local/apache2/logs/httpd.pid", ":80")
	httpd.Files["/usr/local/apache2/logs/"] = image.File{Mode: 0o755}
	prog, err := os.ReadFile(p.CRIImage)
	if err != nil {
		return nil, err
	}
	nnp := base() // nnp is setuid root: it shows whether no_new_privs held
	nnp.Files["/usr/local/bin/nnp"] = image.File{Body: prog, Mode: 0o4755}
	nnp.Cmd = []string{"/usr/local/bin/nnp"}
	predefined := base()
	predefined.Files["/etc/passwd"] = image.File{Body: []byte(passwd + "default-user:x:1000:1000::/home/default-user:/bin/sh\n"), Mode: 0o644}
	predefined.Files["/etc/group"] = image.File{Body: []byte(group + "default-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n"), Mode: 0o644}
	predefined.User = "1000"
	imgs := map[string]image.Options{
		"registry.k8s.io/pause:3.9":                   pause,
		"k8s.gcr.io/pause:3.9":                        pause,
		k8s + "busybox:1.29-2":                        base(),
		k8s + "nginx:1.14-2":                          server("/usr/sbin/nginx", "/var/run/nginx.pid", ":80"),
		k8s + "httpd:2.4.39-4":                        httpd,
		k8s + "nonewprivs:1.3":                        nnp,
		cri + "hostnet-nginx-" + goarch + ":latest":   server("/usr/sbin/nginx", "/var/run/nginx.pid", ":12003"),
		cri + "test-image-user-uid:latest":            with(base(), nil, "1002"),
		cri + "test-image-user-username:latest":       with(base(), nil, "www-data"),
		cri + "test-image-user-uid-group:latest":      with(base(), nil, "1003:1004"),
		cri + "test-image-user-username-group:latest": with(base(), nil, "www-data:1004"),
		cri + "test-image-predefined-group:latest":    predefined,
		cri + "test-image-tag:test":                   with(base(), marker("test"), ""),
		cri + "test-image-tag:all":                    with(base(), marker("all"), ""),
	}
	for _, n := range []string{"test-image-1", "test-image-2", "test-image-3", "test-image-latest", "test-image-digest"} {
		imgs[cri+n+":latest"] = with(base(), marker(n), "")
	}
	for _, tag := range []string{"1", "2", "3"} {
		imgs[cri+"test-image-tags:"+tag] = with(base(), marker("same-image"), "")
	}
	for ref, o := range imgs {
		o.Ref = ref
		imgs[ref] = o
	}
	return imgs, nil
}

// Serve builds every image and adds it to r under its repository path (the
// reference without its registry host: all mirrored registries share r).
func Serve(r *Registry, imgs map[string]image.Options) error {
	for ref, o := range imgs {
		b, err := image.Layout(o)
		if err != nil {
			return fmt.Errorf("image %s: %w", ref, err)
		}
		_, path, ok := strings.Cut(ref, "/")
		i := strings.LastIndex(path, ":")
		if !ok || i < 0 {
			return fmt.Errorf("image reference %s: want registry/repository:tag", ref)
		}
		r.Add(path[:i], path[i+1:], b)
	}
	return nil
}

var goarch = runtime.GOARCH
