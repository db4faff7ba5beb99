// palisade-init exec, in C, before the Go runtime starts.
//
// `palisade-init exec --allow PATH... -- COMMAND...` runs at every start of a
// container with an exec allow-list, so its cost is paid by every workload.
// Starting the Go runtime costs more than the whole job (measured on the
// development VM: an empty static Go program 2.1-3.0 ms, a static C program
// that only execs 1.25-1.5 ms, /usr/bin/true 0.97 ms). As runc's nsexec
// does, this file is linked into the (static, cgo) Go binary and runs as an
// ELF constructor: for `exec` it does everything here and never returns
// (execve, or exit 2/126); every other subcommand falls through to the Go
// main (version). `memfd-noexec PID`, run by the shim on the host at every
// start of such a container, is C too (pi_memfd_noexec): in Go it started
// the runtime twice (the helper, then the child it forks into the
// container's PID namespace), about 7-8 ms of a start.
//
// It does exactly what the Go implementation in libshim/execguard does
// (Ruleset, Resolve, RestrictAndExec), with the same messages and exit
// codes: the allowed files and directory trees, symlinks followed; the ELF
// interpreter (PT_INTERP) of each allowed file, followed only to a known
// loader of this architecture or to a file the list allows; a Landlock
// ruleset handling only LANDLOCK_ACCESS_FS_EXECUTE, no_new_privs, restrict
// this (only) thread, execve. It never degrades: without Landlock it fails.
//
// Everything is bounded: argument counts by argc, paths by PATH_MAX, ELF
// program headers by 64 KiB (the kernel's own limit). The argument parser
// and the ELF reader are exported to the Go tests (pi_parse, pi_interp) and
// fuzzed against the Go implementations they replace.

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "init.h"

#ifndef __NR_landlock_create_ruleset
#define __NR_landlock_create_ruleset 444
#endif
#ifndef __NR_landlock_add_rule
#define __NR_landlock_add_rule 445
#endif
#ifndef __NR_landlock_restrict_self
#define __NR_landlock_restrict_self 446
#endif
#define PI_ACCESS_FS_EXECUTE (1ULL << 0)
#define PI_RULE_PATH_BENEATH 1

// The dynamic loaders of this architecture (libshim/arch Loaders; a Go test
// keeps the two lists equal).
#if defined(__x86_64__)
#define PI_GOARCH "amd64"
static const char *const pi_loaders[] = {
	"/lib64/ld-linux-x86-64.so.2", "/lib/ld-musl-x86_64.so.1",
	"/libx32/ld-linux-x32.so.2", "/lib/ld-linux.so.2", "/lib/ld-musl-i386.so.1", NULL,
};
#elif defined(__aarch64__)
#define PI_GOARCH "arm64"
static const char *const pi_loaders[] = {
	"/lib/ld-linux-aarch64.so.1", "/lib/ld-musl-aarch64.so.1",
	"/lib/ld-linux-armhf.so.3", "/lib/ld-linux.so.3", "/lib/ld-musl-armhf.so.1", NULL,
};
#else
#error "palisade-init: architecture not supported (see libshim/arch)"
#endif

const char *pi_goarch(void) { return PI_GOARCH; }
const char *const *pi_loader_list(void) { return pi_loaders; }

#define USAGE "usage: palisade-init exec --allow PATH... -- COMMAND..."

// errstr is strerror as Go's syscall.Errno prints it (lower-case first
// letter: "no such file or directory").
static const char *errstr(int e, char *buf, size_t n) {
	snprintf(buf, n, "%s", strerror(e));
	if (buf[0] >= 'A' && buf[0] <= 'Z')
		buf[0] = (char)(buf[0] - 'A' + 'a');
	return buf;
}

static void seterr(char *err, size_t n, const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, n, fmt, ap);
	va_end(ap);
}

// pi_parse parses argv[2..argc) of `palisade-init exec` as Go's flag package
// did with one repeatable flag "allow": -allow V, --allow V, -allow=V,
// --allow=V; flags end at "--" (dropped) or at the first non-flag. allow must
// hold argc entries. It returns 0 (nallow and cmd set: the command is
// argv[cmd..argc)), or 2 with err set.
int pi_parse(int argc, char *const *argv, const char **allow, int *nallow, int *cmd, char *err, size_t errn) {
	int i = 2, n = 0;
	err[0] = 0;
	while (i < argc) {
		const char *s = argv[i];
		if (strlen(s) < 2 || s[0] != '-')
			break;
		int dashes = 1;
		if (s[1] == '-') {
			dashes = 2;
			if (s[2] == 0) { // "--" terminates the flags
				i++;
				break;
			}
		}
		const char *name = s + dashes;
		if (name[0] == 0 || name[0] == '-' || name[0] == '=') {
			seterr(err, errn, "bad flag syntax: %s", s);
			return 2;
		}
		const char *eq = strchr(name, '=');
		size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
		i++;
		if (nlen == 5 && strncmp(name, "allow", 5) == 0) {
			if (eq) {
				allow[n++] = eq + 1;
			} else if (i < argc) {
				allow[n++] = argv[i++];
			} else {
				seterr(err, errn, "flag needs an argument: -allow");
				return 2;
			}
			continue;
		}
		if ((nlen == 4 && strncmp(name, "help", 4) == 0) || (nlen == 1 && name[0] == 'h')) {
			seterr(err, errn, "help requested");
			return 2;
		}
		seterr(err, errn, "flag provided but not defined: -%.*s", (int)nlen, name);
		return 2;
	}
	if (i >= argc || n == 0) {
		seterr(err, errn, "missing %s", n == 0 ? "--allow" : "command");
		return 2;
	}
	*nallow = n;
	*cmd = i;
	return 0;
}

// ELF reading: only what the kernel's binfmt_elf reads to find PT_INTERP.
static uint64_t rd(const unsigned char *p, int size, int big) {
	uint64_t v = 0;
	for (int k = 0; k < size; k++)
		v |= (uint64_t)p[big ? size - 1 - k : k] << (8 * k);
	return v;
}

static int full_pread(int fd, void *buf, size_t n, uint64_t off) {
	size_t got = 0;
	if (off > (uint64_t)INT64_MAX - n)
		return 0;
	while (got < n) {
		ssize_t r = pread(fd, (char *)buf + got, n - got, (off_t)(off + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (int)(got == n);
}

#define PI_MAX_PHDRS 65536

// pi_interp_fd reads the PT_INTERP of the ELF file open at fd into out
// (PATH_MAX bytes): "" for a file that is not ELF, is shorter than an ELF
// header, or has no (readable) program headers; 0 on success, else -1 with
// err set. Like Go's debug/elf, a malformed file is "not ELF".
int pi_interp_fd(int fd, char *out, char *err, size_t errn) {
	unsigned char eh[64];
	static unsigned char ph[PI_MAX_PHDRS];
	char eb[128];
	out[0] = 0;
	int r = full_pread(fd, eh, 16, 0);
	if (r < 0) {
		seterr(err, errn, "read %s", errstr(errno, eb, sizeof eb));
		return -1;
	}
	if (r == 0 || memcmp(eh, "\177ELF", 4) != 0)
		return 0;
	int is64 = eh[4] == 2, big = eh[5] == 2;
	if ((eh[4] != 1 && eh[4] != 2) || (eh[5] != 1 && eh[5] != 2) || eh[6] != 1)
		return 0;
	size_t ehsize = is64 ? 64 : 52;
	r = full_pread(fd, eh, ehsize, 0);
	if (r < 0) {
		seterr(err, errn, "read %s", errstr(errno, eb, sizeof eb));
		return -1;
	}
	if (r == 0)
		return 0;
	uint64_t phoff = is64 ? rd(eh + 32, 8, big) : rd(eh + 28, 4, big);
	size_t phentsize = (size_t)rd(eh + (is64 ? 54 : 42), 2, big);
	size_t phnum = (size_t)rd(eh + (is64 ? 56 : 44), 2, big);
	size_t want = is64 ? 56 : 32;
	if (phnum == 0 || phentsize != want || phnum * phentsize > sizeof ph)
		return 0;
	r = full_pread(fd, ph, phnum * phentsize, phoff);
	if (r < 0) {
		seterr(err, errn, "read %s", errstr(errno, eb, sizeof eb));
		return -1;
	}
	if (r == 0)
		return 0;
	for (size_t k = 0; k < phnum; k++) {
		const unsigned char *p = ph + k * phentsize;
		if (rd(p, 4, big) != 3) // PT_INTERP
			continue;
		uint64_t off = is64 ? rd(p + 8, 8, big) : rd(p + 4, 4, big);
		uint64_t sz = is64 ? rd(p + 32, 8, big) : rd(p + 16, 4, big);
		if (sz >= PATH_MAX) {
			seterr(err, errn, "read PT_INTERP: %llu bytes is longer than a path", (unsigned long long)sz);
			return -1;
		}
		r = sz == 0 ? 0 : full_pread(fd, out, (size_t)sz, off);
		if (r <= 0) { // an empty PT_INTERP is an error, to debug/elf and the kernel
			out[0] = 0;
			seterr(err, errn, "read PT_INTERP: %s", r < 0 ? errstr(errno, eb, sizeof eb) : "EOF");
			return -1;
		}
		size_t len = (size_t)sz;
		while (len > 0 && out[len - 1] == 0)
			len--;
		out[len] = 0;
		if (memchr(out, 0, len) != NULL) {
			out[0] = 0;
			seterr(err, errn, "read PT_INTERP: the path holds a NUL byte");
			return -1;
		}
		return 0;
	}
	return 0;
}

static int interp_path(const char *path, char *out, char *err, size_t errn) {
	char eb[128];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		seterr(err, errn, "open %s: %s", path, errstr(errno, eb, sizeof eb));
		return -1;
	}
	int r = pi_interp_fd(fd, out, err, errn);
	close(fd);
	return r;
}

// The ruleset: at most 2 paths per allow entry, deduplicated.
struct set {
	char **p;
	int n;
};

static int add(struct set *s, const char *p) {
	for (int k = 0; k < s->n; k++)
		if (strcmp(s->p[k], p) == 0)
			return 0;
	s->p[s->n] = strdup(p);
	if (s->p[s->n] == NULL)
		return -1;
	s->n++;
	return 0;
}

static int known_loader(const char *p, const char **allow, int nallow) {
	for (int k = 0; pi_loaders[k]; k++)
		if (strcmp(pi_loaders[k], p) == 0)
			return 1;
	for (int k = 0; k < nallow; k++)
		if (strcmp(allow[k], p) == 0)
			return 1;
	return 0;
}

static void loader_names(char *buf, size_t n) {
	buf[0] = 0;
	for (int k = 0; pi_loaders[k]; k++) {
		size_t l = strlen(buf);
		snprintf(buf + l, n - l, "%s%s", k ? ", " : "", pi_loaders[k]);
	}
}

// pi_ruleset is execguard.Ruleset: the paths to allow execute on.
int pi_ruleset(const char **allow, int nallow, char **out, int *nout, char *err, size_t errn) {
	struct set s = {out, 0};
	char real[PATH_MAX], interp[PATH_MAX], rinterp[PATH_MAX], eb[128], sub[512];
	for (int k = 0; k < nallow; k++) {
		const char *a = allow[k];
		size_t alen = strlen(a);
		if (realpath(a, real) == NULL) {
			seterr(err, errn, "allow-list entry %s: %s", a, errstr(errno, eb, sizeof eb));
			return -1;
		}
		if (alen > 0 && a[alen - 1] == '/') {
			// A directory entry must be that directory, not a link to
			// another (an image with /opt/app -> / would otherwise allow
			// everything).
			size_t rlen = strlen(real);
			if (rlen + 1 != alen || strncmp(real, a, rlen) != 0) {
				seterr(err, errn, "allow-list entry %s is a symlink (to %s) in this image; list the real directory", a, real);
				return -1;
			}
			if (add(&s, a) < 0)
				goto nomem;
			continue;
		}
		if (add(&s, real) < 0)
			goto nomem;
		if (interp_path(real, interp, sub, sizeof sub) < 0) {
			seterr(err, errn, "allow-list entry %s: %s", a, sub);
			return -1;
		}
		if (interp[0] == 0)
			continue;
		// PT_INTERP is image data: follow it only to a dynamic loader of
		// this architecture, or to a file the list itself allows.
		if (!known_loader(interp, allow, nallow)) {
			char names[512];
			loader_names(names, sizeof names);
			seterr(err, errn, "allow-list entry %s names %s as its ELF interpreter, which is not a %s dynamic loader (%s); add %s to the allow-list if the image really needs it", a, interp, PI_GOARCH, names, interp);
			return -1;
		}
		if (realpath(interp, rinterp) == NULL) {
			seterr(err, errn, "allow-list entry %s needs its ELF interpreter %s: %s", a, interp, errstr(errno, eb, sizeof eb));
			return -1;
		}
		if (add(&s, rinterp) < 0)
			goto nomem;
	}
	*nout = s.n;
	return 0;
nomem:
	seterr(err, errn, "out of memory");
	return -1;
}

// resolve is execguard.Resolve with root "/": args0 looked up in the PATH of
// env (the last PATH= wins; the default when there is none) unless it has a
// slash, relative to the working directory, symlinks followed.
static int resolve(const char *args0, char *const *envp, char *out, char *err, size_t errn) {
	char cwd[PATH_MAX], cand[PATH_MAX], eb[128];
	static char searched[16384];
	char last[PATH_MAX + 160] = "";
	int lastnoent = 1;
	const char *pathenv = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	if (args0[0] == 0) {
		seterr(err, errn, "the process has no command (args[0] is empty)");
		return -1;
	}
	if (getcwd(cwd, sizeof cwd) == NULL || cwd[0] != '/')
		strcpy(cwd, "/");
	for (char *const *e = envp; e && *e; e++)
		if (strncmp(*e, "PATH=", 5) == 0)
			pathenv = *e + 5;
	int slash = strchr(args0, '/') != NULL;
	const char *dirs = slash ? "" : pathenv;
	searched[0] = 0;
	for (const char *d = dirs;;) {
		const char *end = slash ? d : strchrnul(d, ':');
		int n;
		if (slash)
			n = args0[0] == '/' ? snprintf(cand, sizeof cand, "%s", args0) : snprintf(cand, sizeof cand, "%s/%s", cwd, args0);
		else if (end == d)
			n = snprintf(cand, sizeof cand, "%s/%s", cwd, args0); // "" is "."
		else if (d[0] == '/')
			n = snprintf(cand, sizeof cand, "%.*s/%s", (int)(end - d), d, args0);
		else
			n = snprintf(cand, sizeof cand, "%s/%.*s/%s", cwd, (int)(end - d), d, args0);
		size_t sl = strlen(searched);
		snprintf(searched + sl, sizeof searched - sl, "%s%s", sl ? ", " : "", cand);
		if (n < 0 || (size_t)n >= sizeof cand) {
			snprintf(last, sizeof last, "%.64s...: %s", cand, errstr(ENAMETOOLONG, eb, sizeof eb));
			lastnoent = 0;
		} else if (realpath(cand, out) == NULL) {
			snprintf(last, sizeof last, "%s: %s", cand, errstr(errno, eb, sizeof eb));
			lastnoent = errno == ENOENT;
		} else {
			struct stat st;
			if (stat(out, &st) != 0) {
				snprintf(last, sizeof last, "%s: %s", cand, errstr(errno, eb, sizeof eb));
				lastnoent = errno == ENOENT;
			} else if (!S_ISREG(st.st_mode) || (st.st_mode & 0111) == 0) {
				snprintf(last, sizeof last, "%s is not an executable file", cand);
				lastnoent = 0;
			} else {
				return 0;
			}
		}
		if (slash || *end == 0)
			break;
		d = end + 1;
	}
	if (lastnoent)
		seterr(err, errn, "\"%s\" not found in the container (PATH searched: %s)", args0, searched);
	else
		seterr(err, errn, "\"%s\": %s", args0, last);
	return -1;
}

struct pi_ruleset_attr {
	uint64_t handled_access_fs;
};

struct pi_path_beneath_attr {
	uint64_t allowed_access;
	int32_t parent_fd;
} __attribute__((packed));

static int restrict_thread(char **paths, int n, char *err, size_t errn) {
	char eb[128];
	struct pi_ruleset_attr attr = {PI_ACCESS_FS_EXECUTE};
	long rfd = syscall(__NR_landlock_create_ruleset, &attr, sizeof attr, 0);
	if (rfd < 0) {
		seterr(err, errn, "landlock_create_ruleset: %s", errstr(errno, eb, sizeof eb));
		return -1;
	}
	for (int k = 0; k < n; k++) {
		int fd = open(paths[k], O_PATH | O_CLOEXEC);
		if (fd < 0) {
			seterr(err, errn, "open %s: %s", paths[k], errstr(errno, eb, sizeof eb));
			return -1;
		}
		struct pi_path_beneath_attr rule = {PI_ACCESS_FS_EXECUTE, fd};
		long r = syscall(__NR_landlock_add_rule, rfd, PI_RULE_PATH_BENEATH, &rule, 0);
		int e = errno;
		close(fd);
		if (r != 0) {
			seterr(err, errn, "landlock_add_rule %s: %s", paths[k], errstr(e, eb, sizeof eb));
			return -1;
		}
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		seterr(err, errn, "prctl(PR_SET_NO_NEW_PRIVS): %s", errstr(errno, eb, sizeof eb));
		return -1;
	}
	if (syscall(__NR_landlock_restrict_self, rfd, 0) != 0) {
		seterr(err, errn, "landlock_restrict_self: %s", errstr(errno, eb, sizeof eb));
		return -1;
	}
	close((int)rfd);
	return 0;
}

static void die(int code, const char *msg) {
	dprintf(2, "palisade-init: %s\n", msg);
	_exit(code);
}

static char pi_err[PATH_MAX * 4];

// The seccomp program `palisade-init seccomp` loads just before execve
// (pi_filter_len 0: none).
static struct sock_filter pi_filter[PI_MAX_INSNS];
static int pi_filter_len;

// pi_program decodes a seccomp program as the shim writes it: lower-case
// hex of the raw sock_filter records in the host's byte order, 1 to
// PI_MAX_INSNS (the kernel's BPF_MAXINSNS) of them. It returns the number
// of instructions, or -1 with err set. out holds PI_MAX_INSNS.
int pi_program(const char *hex, struct sock_filter *out, char *err, size_t errn) {
	size_t n = strnlen(hex, PI_MAX_INSNS * 16 + 1);
	if (n == 0 || n % 16 != 0 || n / 16 > PI_MAX_INSNS) {
		seterr(err, errn, "a program is 1 to %d instructions of 16 hex digits", PI_MAX_INSNS);
		return -1;
	}
	unsigned char *b = (unsigned char *)out;
	for (size_t i = 0; i < n; i += 2) {
		int v = 0;
		for (int k = 0; k < 2; k++) {
			char c = hex[i + (size_t)k];
			if (c >= '0' && c <= '9')
				v = v * 16 + (c - '0');
			else if (c >= 'a' && c <= 'f')
				v = v * 16 + (c - 'a' + 10);
			else {
				seterr(err, errn, "a program is lower-case hex: bad digit at %zu", i + (size_t)k);
				return -1;
			}
		}
		b[i / 2] = (unsigned char)v;
	}
	return (int)(n / 16);
}

// load_filter loads pi_filter into this thread, the last step before
// execve. It refuses to while the process is dumpable: another process of
// the container's user could then write into it (/proc/PID/mem, ptrace)
// before its filter holds. The shim mounts a copy of palisade-init nobody
// may read, which the kernel execs non-dumpable (libshim/launch).
static int load_filter(char *err, size_t errn) {
	char eb[128];
	if (pi_filter_len == 0)
		return 0;
	if (prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 1) {
		seterr(err, errn, "the process is dumpable (palisade-init is readable by the container's user): another process could take it over before its seccomp filter holds");
		return -1;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		seterr(err, errn, "prctl(PR_SET_NO_NEW_PRIVS): %s", errstr(errno, eb, sizeof eb));
		return -1;
	}
	struct sock_fprog prog = {(unsigned short)pi_filter_len, pi_filter};
	if (syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) {
		seterr(err, errn, "seccomp(SECCOMP_SET_MODE_FILTER): %s", errstr(errno, eb, sizeof eb));
		return -1;
	}
	return 0;
}

static void pi_exec(int argc, char **argv, char **envp) {
	const char **allow = calloc((size_t)argc, sizeof *allow);
	char **paths = calloc((size_t)argc * 2, sizeof *paths);
	char sub[PATH_MAX * 3], exe[PATH_MAX];
	int nallow = 0, cmd = 0, npaths = 0;
	if (allow == NULL || paths == NULL)
		die(126, "out of memory");
	if (pi_parse(argc, argv, allow, &nallow, &cmd, pi_err, sizeof pi_err) != 0) {
		dprintf(2, "%s\n", pi_err);
		die(2, USAGE);
	}
	if (pi_ruleset(allow, nallow, paths, &npaths, pi_err, sizeof pi_err) != 0)
		die(126, pi_err);
	if (resolve(argv[cmd], envp, exe, pi_err, sizeof pi_err) != 0)
		die(126, pi_err);
	if (restrict_thread(paths, npaths, sub, sizeof sub) != 0) {
		snprintf(pi_err, sizeof pi_err, "cannot apply the exec allow-list with Landlock: %s", sub);
		die(126, pi_err);
	}
	if (load_filter(sub, sizeof sub) != 0) {
		snprintf(pi_err, sizeof pi_err, "cannot load the container's seccomp filter: %s", sub);
		die(126, pi_err);
	}
	execve(exe, argv + cmd, envp);
	die(126, errstr(errno, sub, sizeof sub));
}

#define SECCOMP_USAGE "usage: palisade-init seccomp PROGRAM -- COMMAND... | seccomp PROGRAM exec --allow PATH... -- COMMAND..."

// pi_seccomp runs `palisade-init seccomp PROGRAM ...`: the container's
// seccomp filter, compiled by the shim, loaded here instead of by runc.
// After the program comes either "--" and the command, or a whole `exec`
// (the exec allow-list), whose Landlock rules go first: the filter is
// always the last thing loaded before execve.
static void pi_seccomp(int argc, char **argv, char **envp) {
	char exe[PATH_MAX], sub[PATH_MAX * 2];
	if (argc < 5) {
		die(2, SECCOMP_USAGE);
	}
	pi_filter_len = pi_program(argv[2], pi_filter, pi_err, sizeof pi_err);
	if (pi_filter_len < 0) {
		dprintf(2, "%s\n", pi_err);
		die(2, SECCOMP_USAGE);
	}
	if (strcmp(argv[3], "exec") == 0)
		pi_exec(argc - 2, argv + 2, envp); // never returns
	if (strcmp(argv[3], "--") != 0)
		die(2, SECCOMP_USAGE);
	if (resolve(argv[4], envp, exe, pi_err, sizeof pi_err) != 0)
		die(126, pi_err);
	if (load_filter(sub, sizeof sub) != 0) {
		snprintf(pi_err, sizeof pi_err, "cannot load the container's seccomp filter: %s", sub);
		die(126, pi_err);
	}
	execve(exe, argv + 4, envp);
	die(126, errstr(errno, sub, sizeof sub));
}

#define MEMFD_USAGE "usage: palisade-init memfd-noexec PID"

// pi_pid parses a process ID as the shim writes one: decimal digits, no
// sign, no leading zero, at most 4194304 (the kernel's PID_MAX_LIMIT). It
// returns the PID, or 0 for anything else.
int pi_pid(const char *s) {
	long v = 0;
	if (s == NULL || s[0] < '1' || s[0] > '9')
		return 0;
	for (const char *c = s; *c; c++) {
		if (*c < '0' || *c > '9')
			return 0;
		v = v * 10 + (*c - '0');
		if (v > 4194304)
			return 0;
	}
	return (int)v;
}

// pi_ns_pid copies into out the last NSpid field of /proc/PID/status: the
// process's PID in its own PID namespace. It returns 0, or -1 with errno
// set (ENOENT when the kernel shows no NSpid).
static int pi_ns_pid(int pid, char *out, size_t n) {
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/status", pid);
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return -1;
	char *line = NULL;
	size_t cap = 0;
	int found = 0;
	while (!found && getline(&line, &cap, f) > 0) {
		if (strncmp(line, "NSpid:", 6) != 0)
			continue;
		char *save = NULL, *last = NULL;
		for (char *t = strtok_r(line + 6, " \t\n", &save); t != NULL; t = strtok_r(NULL, " \t\n", &save))
			last = t;
		if (last != NULL) {
			snprintf(out, n, "%s", last);
			found = 1;
		}
	}
	free(line);
	fclose(f);
	if (!found) {
		errno = ENOENT;
		return -1;
	}
	return 0;
}

// pi_memfd_noexec sets vm.memfd_noexec = 2 (memfds can never be executed)
// in the PID namespace of process PID. Landlock does not mediate memfds, so
// without it a confined process could run a binary it wrote into one. The
// sysctl belongs to the writer's PID namespace: this process joins the
// container's for its children and forks the writer there. It runs in the
// constructor, single-threaded, so fork is safe; it never returns.
static void pi_memfd_noexec(int argc, char **argv) {
	char eb[128];
	int pid = argc == 3 ? pi_pid(argv[2]) : 0;
	if (pid == 0)
		die(2, MEMFD_USAGE);
	char ns[64];
	snprintf(ns, sizeof ns, "/proc/%d/ns/pid", pid);
	int fd = open(ns, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(pi_err, sizeof pi_err, "open the container's pid namespace: open %s: %s", ns, errstr(errno, eb, sizeof eb));
		die(1, pi_err);
	}
	// Never the caller's own namespace (the host's, for the shim): a PID
	// reused by a process outside any container must not set the sysctl
	// for the whole host.
	struct stat target, self;
	if (fstat(fd, &target) != 0 || stat("/proc/self/ns/pid", &self) != 0) {
		snprintf(pi_err, sizeof pi_err, "compare the pid namespaces: %s", errstr(errno, eb, sizeof eb));
		die(1, pi_err);
	}
	if (target.st_dev == self.st_dev && target.st_ino == self.st_ino) {
		snprintf(pi_err, sizeof pi_err, "process %d is in this process's own pid namespace, not a container's of its own: vm.memfd_noexec is not set there", pid);
		die(1, pi_err);
	}
	// Only the init of its namespace (PID 1 there), as a container's init
	// with its own PID namespace is: any other process means the init is
	// gone and its PID reused, perhaps in another container's or a pod's
	// shared namespace. Checked again after, so that the namespace joined
	// is the one whose init was seen.
	char nspid[32];
	struct stat again;
	if (pi_ns_pid(pid, nspid, sizeof nspid) != 0) {
		snprintf(pi_err, sizeof pi_err, "read process %d's pid in its pid namespace: %s", pid, errstr(errno, eb, sizeof eb));
		die(1, pi_err);
	}
	if (strcmp(nspid, "1") != 0) {
		snprintf(pi_err, sizeof pi_err, "process %d is not the init of its pid namespace (it is pid %s there), so not a container's init: vm.memfd_noexec is not set there", pid, nspid);
		die(1, pi_err);
	}
	if (stat(ns, &again) != 0 || again.st_dev != target.st_dev || again.st_ino != target.st_ino) {
		snprintf(pi_err, sizeof pi_err, "process %d left its pid namespace while it was checked: vm.memfd_noexec is not set", pid);
		die(1, pi_err);
	}
	if (setns(fd, CLONE_NEWPID) != 0) {
		snprintf(pi_err, sizeof pi_err, "join the container's pid namespace: %s", errstr(errno, eb, sizeof eb));
		die(1, pi_err);
	}
	close(fd);
	pid_t child = fork();
	if (child < 0) {
		snprintf(pi_err, sizeof pi_err, "fork into the container's pid namespace: %s", errstr(errno, eb, sizeof eb));
		die(1, pi_err);
	}
	if (child == 0) {
		const char *path = "/proc/sys/vm/memfd_noexec";
		int w = open(path, O_WRONLY | O_CLOEXEC);
		if (w < 0) {
			snprintf(pi_err, sizeof pi_err, "write vm.memfd_noexec: open %s: %s", path, errstr(errno, eb, sizeof eb));
			die(1, pi_err);
		}
		if (write(w, "2\n", 2) != 2) {
			snprintf(pi_err, sizeof pi_err, "write vm.memfd_noexec: write %s: %s", path, errstr(errno, eb, sizeof eb));
			die(1, pi_err);
		}
		_exit(0);
	}
	int st;
	while (waitpid(child, &st, 0) < 0) {
		if (errno != EINTR) {
			snprintf(pi_err, sizeof pi_err, "wait for the vm.memfd_noexec writer: %s", errstr(errno, eb, sizeof eb));
			die(1, pi_err);
		}
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		die(1, "setting vm.memfd_noexec failed");
	_exit(0);
}

// pi_init runs before the Go runtime starts (glibc passes argc, argv and
// envp to constructors, in static programs too).
__attribute__((constructor)) static void pi_init(int argc, char **argv, char **envp) {
	if (argc >= 2 && strcmp(argv[1], "exec") == 0)
		pi_exec(argc, argv, envp);
	if (argc >= 2 && strcmp(argv[1], "seccomp") == 0)
		pi_seccomp(argc, argv, envp);
	if (argc >= 2 && strcmp(argv[1], "memfd-noexec") == 0)
		pi_memfd_noexec(argc, argv);
}
