/* SPDX-License-Identifier: MIT */
/*
 * <rouse/process.h> - child processes, in librouse-reactor.
 *
 * rouse_process_spawn() starts a program with posix_spawn(3) and holds it
 * by a pidfd registered with a reactor: its standard streams are
 * inherited, /dev/null, a descriptor of the caller's, or a pipe that
 * comes back as a stream; a wait future is ready when it ends, with its
 * exit status or the signal that ended it.  No SIGCHLD handler, and no
 * wait for any child but these: other code's children are never touched.
 * A process freed before it was waited for is never left a zombie.
 * Everything returns 0 (or a value) or -errno.
 */
#ifndef ROUSE_PROCESS_H
#define ROUSE_PROCESS_H

#include <sys/types.h>

#include <rouse/future.h>
#include <rouse/net.h>
#include <rouse/reactor.h>

#ifdef __cplusplus
extern "C" {
#endif

struct rouse_process;

/* What a standard stream of the child is: one of these, or an fd >= 0. */
enum {
	ROUSE_STDIO_INHERIT = -1,	/* the caller's own */
	ROUSE_STDIO_NULL = -2,		/* /dev/null */
	ROUSE_STDIO_PIPE = -3,		/* a pipe; the other end a stream */
};

/* Flags of struct rouse_process_config. */
enum {
	ROUSE_PROCESS_KILL_ON_DROP = 0x1,	/* free sends SIGKILL */
	ROUSE_PROCESS_SEARCH_PATH = 0x2,	/* find path in $PATH */
	ROUSE_PROCESS_NEW_GROUP = 0x4,	/* the child leads a process group */
};

/*
 * What to run; rouse_process_config_init() fills in the defaults (NULL,
 * inherit, no flags).  The strings are the caller's, read only during
 * rouse_process_spawn().
 */
struct rouse_process_config {
	const char *path;		/* the program */
	char *const *argv;		/* argv[0] first, NULL last */
	char *const *envp;		/* NULL: the caller's environment */
	const char *cwd;		/* NULL: the caller's directory */
	int stdio[3];			/* ROUSE_STDIO_*, or an fd to dup */
	unsigned int flags;		/* ROUSE_PROCESS_* */
};

int rouse_process_config_init(struct rouse_process_config *c);
int rouse_process_spawn(struct rouse_reactor *r,
			const struct rouse_process_config *c,
			struct rouse_process **out);
/*
 * Stop holding the child: pipes not taken are closed; a child still
 * running is killed (KILL_ON_DROP, its group too with NEW_GROUP) and
 * reaped, or else reaped later, when it ends, by a reactor.  Every
 * future of p must have been dropped.
 */
int rouse_process_free(struct rouse_process *p);

pid_t rouse_process_pid(const struct rouse_process *p);
/* pidfd_send_signal(2): never a process that merely reused the pid. */
int rouse_process_kill(struct rouse_process *p, int sig);
/* kill(2) of the child's whole process group (NEW_GROUP only). */
int rouse_process_kill_group(struct rouse_process *p, int sig);
/* The stream of pipe n (0, 1, 2), still the process's; or NULL. */
struct rouse_stream *rouse_process_stdio(struct rouse_process *p, int n);
/* Take the stream of pipe n: the caller closes it from now on. */
int rouse_process_take_stdio(struct rouse_process *p, int n,
			     struct rouse_stream **out);

/*
 * Ready when the child has ended, which it reaps.  status is as
 * waitpid(2) stores it; exit_code is the exit status (0 to 255), or -1
 * when a signal ended it, which term_signal names (else 0).  Once reaped,
 * every later wait is ready at once with the same values.
 */
struct rouse_process_wait {
	struct rouse_future base;
	struct rouse_io_ready ready;	/* private */
	struct rouse_process *process;	/* private */
	int waiting;			/* private */
	int status;			/* output */
	int exit_code;			/* output */
	int term_signal;		/* output */
	int result;			/* output: 0 or -errno */
};

int rouse_process_wait_init(struct rouse_process_wait *w,
			    struct rouse_process *p);

#ifdef __cplusplus
}
#endif

#endif /* ROUSE_PROCESS_H */
