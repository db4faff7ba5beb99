package critest

// Reason is why palisade fails a conformance spec on purpose.
type Reason struct {
	Rule string // the pipeline step that decides (libshim/harden), as refusals name it
	// Why says what palisade does and what a pod author does about it.
	Why string
	// Message, when set, must appear in the spec's failure: palisade's own
	// refusal ("[rule namespaces"), or the symptom of a silent override
	// ("Read-only file system").
	Message string
}

// Why texts shared by several specs.
const (
	whyPrivileged = "`privileged: true` is refused in every profile; ask for the capabilities the program needs " +
		"(`palisade.dev/cap-add`, within the profile) or run it under another RuntimeClass"
	whyCapability = "a capability outside the profile's list (restricted: `NET_BIND_SERVICE`) is refused; choose a " +
		"profile that allows it, or do without"
	whyHostNS = "host namespaces are refused unless the profile's `namespaces.host_allowed` lists them; use the " +
		"pod's own namespaces"
	whyUser = "root becomes 65534 (silent): a root-owned host directory that is not world-writable (or mode 0700, " +
		"as critest's temporary volumes) is out of reach; set `runAsUser`/`fsGroup` to the directory's owner, " +
		"make the volume writable for the pod's user, or use a profile with `user.allow_root`"
	whyReadOnlyRoot = "the root filesystem is read-only whatever the pod asks (silent); writes go to volumes, " +
		"the profile's tmpfs (`/tmp`, `/run`, `/var/run`) or `palisade.dev/writable-paths` within the profile's list"
	whySeccomp = "seccomp is always on (silent): no profile or `Unconfined` still gets palisade's filter, and a pod's " +
		"own profile is combined with it"
)

// Deliberate is the reviewed list of critest v1.37.0 specs that fail under
// palisade's restricted profile and pass under runc, by full spec name.
// Everything else that fails only under palisade is a bug to fix.
var Deliberate = map[string]Reason{
	// privileged containers
	"[k8s.io] Security Context bucket runtime should support Privileged is true": {
		Rule: "privileged", Why: whyPrivileged, Message: "[rule privileged"},
	"[k8s.io] Security Context bucket runtime should support adding ALL capabilities": {
		Rule: "privileged", Why: "all capabilities count as privileged; " + whyPrivileged, Message: "[rule privileged"},
	"[k8s.io] Container Mount Propagation runtime should support mount propagation mount with 'rprivate' should not support propagation": {
		Rule: "privileged", Why: "the spec runs the container privileged; " + whyPrivileged, Message: "[rule privileged"},
	"[k8s.io] Container Mount Propagation runtime should support mount propagation mount with 'rslave' should support propagation from host to container": {
		Rule: "privileged", Why: "the spec runs the container privileged; " + whyPrivileged, Message: "[rule privileged"},
	"[k8s.io] Security Context SeccompProfilePath runtime should ignore a seccomp profile that blocks setting hostname when privileged": {
		Rule: "privileged", Why: whyPrivileged, Message: "[rule privileged"},
	"[k8s.io] Container Mount Propagation runtime should support mount propagation mount with 'rshared' should support propagation from host to container and vice versa": {
		Rule: "fields", Why: "shared (`Bidirectional`) mount propagation would let mounts flow back to the host; use " +
			"`HostToContainer` (rslave) or none", Message: "[rule fields"},

	// capabilities beyond the profile
	"[k8s.io] Security Context bucket runtime should support adding capability": {
		Rule: "capabilities", Why: whyCapability, Message: "[rule capabilities"},
	"[k8s.io] Security Context SeccompProfilePath runtime should not block setting host name with unconfined seccomp and SYS_ADMIN": {
		Rule: "capabilities", Why: "`SYS_ADMIN`: " + whyCapability, Message: "[rule capabilities"},
	"[k8s.io] Security Context SeccompProfilePath runtime should support an seccomp profile that blocks setting hostname with SYS_ADMIN": {
		Rule: "capabilities", Why: "`SYS_ADMIN`: " + whyCapability, Message: "[rule capabilities"},

	// host namespaces
	"[k8s.io] Security Context NamespaceOption runtime should support HostNetwork is true": {
		Rule: "namespaces", Why: whyHostNS, Message: "[rule namespaces"},
	"[k8s.io] Security Context NamespaceOption runtime should support HostPID": {
		Rule: "namespaces", Why: whyHostNS, Message: "[rule namespaces"},
	"[k8s.io] Security Context NamespaceOption runtime should support HostIpc is true": {
		Rule: "namespaces", Why: whyHostNS, Message: "[rule namespaces"},
	"[k8s.io] Streaming runtime should support streaming interfaces runtime should support portforward in host network": {
		Rule: "namespaces", Why: "the pod uses the host network; " + whyHostNS, Message: "[rule namespaces"},

	// sysctls
	"[k8s.io] PodSandbox runtime should support sysctls should support unsafe sysctls": {
		Rule: "sysctls", Why: "only Kubernetes' safe sysctls and the profile's `sysctls.allowed`", Message: "[rule sysctls"},

	// silent overrides
	"[k8s.io] Security Context bucket runtime should support that ReadOnlyRootfs is false": {
		Rule: "readonly-rootfs", Why: whyReadOnlyRoot, Message: "Read-only file system"},
	"[k8s.io] Multiple Containers [Conformance] when running multiple containers in a pod should support network": {
		Rule: "readonly-rootfs", Why: "httpd writes its PID file to `/usr/local/apache2/logs` in the image; " + whyReadOnlyRoot +
			" — here an `emptyDir` at `/usr/local/apache2/logs`"},
	"[k8s.io] Multiple Containers [Conformance] when running multiple containers in a pod should support container exec": {
		Rule: "readonly-rootfs", Why: "httpd exits, as in the spec above"},
	"[k8s.io] Security Context NoNewPrivs should allow privilege escalation when false": {
		Rule: "no-new-privileges", Why: "no_new_privs is always on (silent): setuid programs do not gain privileges; " +
			"give the program the capability it needs instead", Message: "Effective uid: 1000"},
	"[k8s.io] Security Context SeccompProfilePath should support nil profile, which is unconfined": {
		Rule: "seccomp", Why: whySeccomp, Message: "Seccomp:\t2"},
	"[k8s.io] Security Context SeccompProfilePath should support seccomp unconfined on the container": {
		Rule: "seccomp", Why: whySeccomp, Message: "Seccomp:\t2"},
	"[k8s.io] Container runtime should support adding volume and device runtime should support starting container with volume [Conformance]": {
		Rule: "user", Why: whyUser, Message: "Permission denied"},
	"[k8s.io] Container runtime should support adding volume and device runtime should support starting container with volume when host path is a symlink [Conformance]": {
		Rule: "user", Why: whyUser, Message: "Permission denied"},
	"[k8s.io] Container Mount Readonly runtime should support readonly mounts should support non-recursive readonly mounts": {
		Rule: "user", Why: whyUser, Message: "Permission denied"},
	"[k8s.io] Container Mount Readonly runtime should support readonly mounts should support recursive readonly mounts": {
		Rule: "user", Why: "the volume's directory is 0700 root: `EACCES`, not the `EROFS` the spec looks for; " + whyUser},
}
