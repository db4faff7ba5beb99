package release

import (
	"context"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"time"

	"palisade.dev/palisade/libshim/arch"
)

// The SPDX 2.3 JSON document, only the fields palisade fills.
type spdxDoc struct {
	SPDXVersion       string             `json:"spdxVersion"`
	DataLicense       string             `json:"dataLicense"`
	SPDXID            string             `json:"SPDXID"`
	Name              string             `json:"name"`
	DocumentNamespace string             `json:"documentNamespace"`
	CreationInfo      spdxCreation       `json:"creationInfo"`
	Packages          []spdxPackage      `json:"packages"`
	Files             []spdxFile         `json:"files"`
	Relationships     []spdxRelationship `json:"relationships"`
}

type spdxCreation struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type spdxPackage struct {
	Name             string    `json:"name"`
	SPDXID           string    `json:"SPDXID"`
	VersionInfo      string    `json:"versionInfo,omitempty"`
	Supplier         string    `json:"supplier,omitempty"`
	DownloadLocation string    `json:"downloadLocation"`
	FilesAnalyzed    bool      `json:"filesAnalyzed"`
	Checksums        []spdxSum `json:"checksums,omitempty"`
	ExternalRefs     []spdxRef `json:"externalRefs,omitempty"`
	Comment          string    `json:"comment,omitempty"`
	PrimaryPurpose   string    `json:"primaryPackagePurpose,omitempty"`
}

type spdxFile struct {
	FileName  string    `json:"fileName"`
	SPDXID    string    `json:"SPDXID"`
	Checksums []spdxSum `json:"checksums"`
}

type spdxSum struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"checksumValue"`
}

type spdxRef struct {
	Category string `json:"referenceCategory"`
	Type     string `json:"referenceType"`
	Locator  string `json:"referenceLocator"`
}

type spdxRelationship struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

var spdxIDUnsafe = regexp.MustCompile(`[^A-Za-z0-9.-]+`)

func spdxID(kind, name string) string {
	return "SPDXRef-" + kind + "-" + strings.Trim(spdxIDUnsafe.ReplaceAllString(name, "-"), "-")
}

// SBOM describes one tarball: the palisade package, its files with their
// SHA-256, and what each binary links: every Go module and the Go standard
// library (from the binary's own build information) and, in the cgo
// binaries, the C libraries linked in statically (glibc and libseccomp, the
// versions of Debian's packages for that architecture).
func SBOM(ctx context.Context, src *Source, a arch.Info, base string, entries []entry) ([]byte, error) {
	root := spdxPackage{
		Name: "palisade", SPDXID: "SPDXRef-Package-palisade", VersionInfo: src.Version,
		Supplier: "Organization: palisade", DownloadLocation: "NOASSERTION", PrimaryPurpose: "APPLICATION",
		ExternalRefs: []spdxRef{{"PACKAGE-MANAGER", "purl", "pkg:golang/" + Module + "@" + src.Version + "?arch=" + a.GoArch}},
		Comment:      "commit " + src.Commit + ", built with " + src.Toolchain + " for linux/" + a.GoArch,
	}
	doc := spdxDoc{
		SPDXVersion: "SPDX-2.3", DataLicense: "CC0-1.0", SPDXID: "SPDXRef-DOCUMENT", Name: base,
		DocumentNamespace: "https://palisade.dev/spdx/" + base + "-" + src.Commit,
		CreationInfo:      spdxCreation{Created: src.Epoch.Format(time.RFC3339), Creators: []string{"Tool: palisade-release", "Organization: palisade"}},
		Packages:          []spdxPackage{root},
		Relationships:     []spdxRelationship{{"SPDXRef-DOCUMENT", "DESCRIBES", root.SPDXID}},
	}
	pkgs := map[string]spdxPackage{}
	link := func(file string, p spdxPackage) {
		if _, ok := pkgs[p.SPDXID]; !ok {
			pkgs[p.SPDXID] = p
		}
		doc.Relationships = append(doc.Relationships, spdxRelationship{file, "STATIC_LINK", p.SPDXID})
	}
	for _, e := range entries {
		data, err := os.ReadFile(e.from)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(data)
		f := spdxFile{FileName: "./" + e.name, SPDXID: spdxID("File", e.name), Checksums: []spdxSum{{"SHA256", hex.EncodeToString(sum[:])}}}
		doc.Files = append(doc.Files, f)
		doc.Relationships = append(doc.Relationships, spdxRelationship{root.SPDXID, "CONTAINS", f.SPDXID})
		if !strings.HasPrefix(e.name, "bin/") {
			continue
		}
		bi, err := buildinfo.ReadFile(e.from)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.from, err)
		}
		if want := src.Toolchain; bi.GoVersion != want && !strings.HasPrefix(bi.GoVersion, want+" ") {
			return nil, fmt.Errorf("%s was built with %s, not the pinned %s", e.name, bi.GoVersion, want)
		}
		link(f.SPDXID, spdxPackage{
			Name: "stdlib", SPDXID: spdxID("Package", "go-stdlib"), VersionInfo: bi.GoVersion, DownloadLocation: "https://go.dev/dl/", PrimaryPurpose: "LIBRARY",
			ExternalRefs: []spdxRef{{"PACKAGE-MANAGER", "purl", "pkg:golang/stdlib@" + bi.GoVersion}},
		})
		for _, d := range bi.Deps {
			m := d
			if d.Replace != nil {
				m = d.Replace
			}
			p := spdxPackage{
				Name: m.Path, SPDXID: spdxID("Package", "go-"+m.Path+"-"+m.Version), VersionInfo: m.Version,
				DownloadLocation: "https://proxy.golang.org/" + strings.ToLower(m.Path) + "/@v/" + m.Version + ".zip", PrimaryPurpose: "LIBRARY",
				ExternalRefs: []spdxRef{{"PACKAGE-MANAGER", "purl", "pkg:golang/" + m.Path + "@" + m.Version}},
			}
			if m.Sum != "" {
				p.Comment = "go.sum " + m.Sum
			}
			link(f.SPDXID, p)
		}
		if cgo := setting(bi, "CGO_ENABLED"); cgo == "1" {
			// A cross compiler links the C library of Debian's
			// libc6-dev-ARCH-cross; libseccomp comes from the multiarch
			// libseccomp-dev:ARCH either way.
			host, err := exec.CommandContext(ctx, "dpkg", "--print-architecture").Output()
			if err != nil {
				return nil, fmt.Errorf("dpkg --print-architecture: %w", err)
			}
			libc := "libc6-dev:" + a.GoArch
			if a.GoArch != strings.TrimSpace(string(host)) {
				libc = "libc6-dev-" + a.GoArch + "-cross"
			}
			debs := []string{libc}
			if slices.ContainsFunc(bi.Deps, func(m *debug.Module) bool { return m.Path == "github.com/seccomp/libseccomp-golang" }) {
				debs = append(debs, "libseccomp-dev:"+a.GoArch)
			}
			for _, deb := range debs {
				v, err := debVersion(ctx, deb)
				if err != nil {
					return nil, err
				}
				name := "glibc"
				if strings.HasPrefix(deb, "libseccomp") {
					name = "libseccomp"
				}
				link(f.SPDXID, spdxPackage{
					Name: name, SPDXID: spdxID("Package", "deb-"+name+"-"+a.GoArch), VersionInfo: v, Supplier: "Organization: Debian",
					DownloadLocation: "NOASSERTION", PrimaryPurpose: "LIBRARY", Comment: "linked statically from Debian's " + deb,
					ExternalRefs: []spdxRef{{"PACKAGE-MANAGER", "purl", "pkg:deb/debian/" + strings.Split(deb, ":")[0] + "@" + v + "?arch=" + a.GoArch}},
				})
			}
		}
	}
	ids := make([]string, 0, len(pkgs))
	for id := range pkgs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		doc.Packages = append(doc.Packages, pkgs[id])
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

func setting(bi *buildinfo.BuildInfo, key string) string {
	for _, s := range bi.Settings {
		if s.Key == key {
			return s.Value
		}
	}
	return ""
}

func debVersion(ctx context.Context, pkg string) (string, error) {
	out, err := exec.CommandContext(ctx, "dpkg-query", "-W", "-f=${Version}", pkg).Output()
	if err != nil {
		return "", fmt.Errorf("the version of %s (linked into the release) is unknown: %w", pkg, err)
	}
	if len(out) == 0 {
		return "", fmt.Errorf("the version of %s (linked into the release) is unknown", pkg)
	}
	return string(out), nil
}
