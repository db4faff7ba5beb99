package harden

import (
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"palisade.dev/palisade/libshim/audit"
	"palisade.dev/palisade/libshim/imageref"
)

// images admits only the images the node's admin config and the profile
// allow (both lists, where set), pinned by digest where either requires it.
// The image reference comes from the shim (CRI's annotation in a CRI
// namespace, else containerd's container record), never from a spec field a
// client could dress up.
func images(r *run, _ *specs.Spec) error {
	if why, fix := r.req.imageProblem(); why != "" {
		return r.wouldRefuse(why, fix, audit.SubjectImage, r.req.image())
	}
	return nil
}

// ImageSeen is the container's image reference if a rule looked it up, for
// the audit record ("" otherwise).
func (req *Request) ImageSeen() string {
	if req.imageRef == nil {
		return ""
	}
	return *req.imageRef
}

// image is the container's image reference, looked up once.
func (req *Request) image() string {
	if req.imageRef == nil {
		ref := ""
		if req.Image != nil {
			ref = req.Image()
		}
		req.imageRef = &ref
	}
	return *req.imageRef
}

// imageProblem says why the container's image may not run, and the fix, or
// "" when it may (or when no list applies).
func (req *Request) imageProblem() (string, string) {
	cfg, prof := req.Config.Images, req.Policy.Profile.Images
	lists := map[string][]string{"the node's images.allowed in " + req.Config.Source: cfg.Allowed, "profile " + req.Policy.Profile.Name + "'s images.allowed": prof.Allowed}
	digest := cfg.RequireDigest || prof.RequireDigest
	restricted := digest
	for _, l := range lists {
		restricted = restricted || len(l) > 0
	}
	if !restricted {
		return "", ""
	}
	if req.image() == "" {
		return "the container's image is not known (a container made from a root filesystem directory), and this node admits only approved images",
			"run the container from an approved image"
	}
	if alg, ok := imageID(req.image()); ok {
		return fmt.Sprintf("image %s is an image ID (%s:…), not a repository: containerd runs whichever local image has that ID (or an ID it begins), from any registry", req.image(), alg),
			"refer to the image by repository and digest, such as registry.example.com/team/app@sha256:…"
	}
	ref, err := imageref.ParseNormalized(req.image())
	if err != nil {
		return fmt.Sprintf("image %q is not a valid reference: %v", req.image(), err), "give a reference such as registry.example.com/team/app@sha256:…"
	}
	if digest && !ref.Pinned() {
		return fmt.Sprintf("image %s is not pinned by digest, which this node requires", req.image()), "refer to the image by digest (@sha256:…)"
	}
	repo := ref.Name()
	for where, l := range lists {
		if len(l) > 0 && !imageAllowed(repo, l) {
			return fmt.Sprintf("image %s is not approved: %s is not in %s (%s)", req.image(), repo, where, strings.Join(l, ", ")),
				"use an approved image, or ask the node administrator to approve this repository"
		}
	}
	return "", ""
}

// imageID reports whether containerd would read ref as an image ID rather
// than a repository: its CRI resolves a reference that is ALGORITHM:HEX, or
// ALGORITHM: and the start of an ID (internal/cri/server/images'
// LocalResolve), to the local image with that ID, while the reference
// grammar reads the same string as the repository docker.io/library/sha256
// with a tag. It returns the algorithm.
func imageID(ref string) (string, bool) {
	alg, _, ok := strings.Cut(ref, ":")
	if !ok || strings.Contains(alg, "/") {
		return "", false
	}
	switch digest.Algorithm(alg) {
	case digest.SHA256, digest.SHA384, digest.SHA512, "blake3":
		return alg, true
	}
	return "", false
}

// imageAllowed reports whether a repository (REGISTRY/PATH) matches one of
// the patterns: "*", an exact repository, or "PREFIX/*" for any repository
// below PREFIX.
func imageAllowed(repo string, patterns []string) bool {
	for _, p := range patterns {
		switch {
		case p == "*", p == repo:
			return true
		case strings.HasSuffix(p, "/*") && strings.HasPrefix(repo, strings.TrimSuffix(p, "*")):
			return true
		}
	}
	return false
}

func verifyImages(req *Request, _ *Decisions, _ *specs.Spec) string {
	if req.Policy.Alert {
		return ""
	}
	if why, _ := req.imageProblem(); why != "" {
		return why
	}
	return ""
}

// ImageRef is the container's image reference, looked up now if no rule
// did ("" for a container without one): alert mode's records name it so
// that learning can gather a profile per image.
func (req *Request) ImageRef() string { return req.image() }
