// The C half of palisade-init (init.c): what the Go tests call.
#ifndef PALISADE_INIT_H
#define PALISADE_INIT_H
#include <stddef.h>
#include <linux/filter.h>

// PI_MAX_INSNS is the kernel's BPF_MAXINSNS.
#define PI_MAX_INSNS 4096

int pi_parse(int argc, char *const *argv, const char **allow, int *nallow, int *cmd, char *err, size_t errn);
int pi_interp_fd(int fd, char *out, char *err, size_t errn);
int pi_pid(const char *s);
int pi_program(const char *hex, struct sock_filter *out, char *err, size_t errn);
int pi_ruleset(const char **allow, int nallow, char **out, int *nout, char *err, size_t errn);
const char *pi_goarch(void);
const char *const *pi_loader_list(void);

#endif
