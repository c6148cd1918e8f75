// SPDX-License-Identifier: MIT
/*
 * reactor/process.c - child processes: spawn, signal, wait, free.
 *
 * One job: struct rouse_process, a child started with posix_spawn(3) and
 * held by a pidfd that is registered with a reactor like any descriptor.
 * It calls the public fd futures of io.c (registration, readiness, clear)
 * and makes its pipes streams with rouse_stream_open() of stream.c; an
 * orphan may move to rouse_reactor_default() of reactor.c.  Nothing calls
 * it back, except a waker of its own (the orphans, below).
 *
 * A pidfd names one process for good: it is readable once the child has
 * ended, waitid(P_PIDFD) reaps that child and no other, and
 * pidfd_send_signal() cannot reach a process that merely reused its pid.
 * So there is no SIGCHLD handler and no waitpid(-1): children that other
 * code made are never touched.
 *
 * The spawn: pipes and their streams first, then posix_spawn(), which in
 * glibc runs the child with CLONE_VFORK and returns an exec failure
 * (ENOENT, EACCES, ENOEXEC) as its own result, so a missing program is
 * an error of the spawn, never an exit status of 127.  The child gets an
 * empty signal mask and every signal at its default action: not the
 * caller's blocked signals, nor the ignored SIGPIPE of a server.  Every
 * descriptor made here is close-on-exec, so a spawn on another thread
 * never leaks our pipes into its child; the child's ends are moved above
 * 2 first, so that one dup2 of the file actions cannot overwrite the
 * source of the next.
 *
 * The window: posix_spawn() returns a pid, and only pidfd_open() makes it
 * a pidfd.  In between, the child is ours by number alone.  Nothing of
 * ours reaps by number, so only other code that reaps children it did
 * not make (waitpid(-1), or SIGCHLD set to SIG_IGN, where the kernel
 * reaps) can take it meanwhile; then pidfd_open() fails with ESRCH, or,
 * had the pid been handed out again in that instant (a full wrap of
 * pid_max), names a process that is not our child, which waitid() on it
 * tells us with ECHILD.  Either way the spawn fails with -ECHILD.
 *
 * Orphans: a process freed while its child runs, without KILL_ON_DROP.
 * The child must not become a zombie, and free must not wait for it.  So
 * the process object stays alive as an orphan: its pidfd stays
 * registered with the reactor, and a readiness future on it is polled
 * with a waker whose wake reaps the child, deregisters and frees.  The
 * reactor's turn that sees the child end does it, on the thread that
 * runs the turn; no list, and no change to the reactor, is needed.  A
 * driven reactor reaps at its next turn.  When the reactor is freed
 * first, its cancellation wakes the orphan with -ECANCELED, and the
 * orphan moves to the process-wide default reactor (which runs on a
 * thread of its own); only if that fails does rouse_reactor_free() wait
 * for the child there and then.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rouse/process.h>

#include "reactor-internal.h"

#define ROUSE__LOG_MODULE "process"

/*
 * waitid()'s idtype for a pidfd (Linux 5.4).  glibc 2.36 has P_PIDFD in
 * its idtype_t enum, older headers lack it; it is 3 in the kernel's ABI.
 */
#define PROCESS_P_PIDFD ((idtype_t)3)

struct rouse_process {
	struct rouse_reactor *reactor;
	struct rouse_io *io;		/* the pidfd, registered; NULL once the
					   reactor took it back (orphans) */
	int pidfd;
	pid_t pid;
	unsigned int flags;		/* ROUSE_PROCESS_* */
	bool reaped;
	int status;			/* once reaped: as waitpid(2)'s */
	struct rouse_stream *stdio[3];	/* pipes not taken */
	struct rouse_io_ready orphan;	/* once freed while running */
};

/* ---- reaping ---------------------------------------------------------- */

/* waitid()'s account of an ended child, as waitpid(2) would store it. */
static int status_of(const siginfo_t *si)
{
	switch (si->si_code) {
	case CLD_EXITED:
		return (si->si_status & 0xff) << 8;
	case CLD_KILLED:
		return si->si_status & 0x7f;
	case CLD_DUMPED:
		return (si->si_status & 0x7f) | 0x80;
	default:
		return 0;
	}
}

/*
 * Reap p's child if it has ended: 1 when it is reaped (now or before), 0
 * when it runs still (options WNOHANG), or -errno (ECHILD: someone else
 * reaped it).  Not a cancellation point: a reaped status is never lost.
 */
static int process_reap(struct rouse_process *p, int options)
{
	siginfo_t si;
	int err = 0, state;

	if (p->reaped)
		return 1;
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &state);
	for (;;) {
		memset(&si, 0, sizeof(si));
		if (waitid(PROCESS_P_PIDFD, (id_t)p->pidfd, &si,
			   WEXITED | options) == 0)
			break;
		if (errno != EINTR) {
			err = -errno;
			break;
		}
	}
	pthread_setcancelstate(state, NULL);
	if (err < 0)
		return err;
	if (si.si_pid == 0)
		return 0;	/* WNOHANG, and it runs */
	p->status = status_of(&si);
	p->reaped = true;
	rouse__debug("pid %d reaped: status 0x%x", (int)p->pid, p->status);
	return 1;
}

static int pidfd_signal(int pidfd, int sig)
{
	return syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0 ? -errno
									 : 0;
}

/* SIGKILL the child and wait the moment it takes to end. */
static void process_kill_reap(struct rouse_process *p)
{
	if (process_reap(p, WNOHANG) != 0)
		return;
	pidfd_signal(p->pidfd, SIGKILL);
	process_reap(p, 0);
}

/* Deregister and close the pidfd, and free p. */
static void process_release(struct rouse_process *p)
{
	if (p->io != NULL)
		rouse_io_deregister(p->io);
	close(p->pidfd);
	rouse__free(p);
}

/* ---- orphans ---------------------------------------------------------- */

static void orphan_reap(struct rouse_process *p);

/*
 * The waker of an orphan's readiness future.  The orphan owns itself, so
 * the waker holds no reference: clone and drop do nothing, and a wake
 * reaps, or waits again.  A reactor hands it to one wake at a time (the
 * waker leaves the source's slot when it is taken to be woken).
 */
static const struct rouse_waker_vtable orphan_waker_vt;

static struct rouse_waker orphan_waker_clone(void *data)
{
	struct rouse_waker w = { data, &orphan_waker_vt };

	return w;
}

static void orphan_waker_wake(void *data)
{
	orphan_reap(data);
}

static void orphan_waker_drop(void *data)
{
}

static const struct rouse_waker_vtable orphan_waker_vt = {
	.clone = orphan_waker_clone,
	.wake = orphan_waker_wake,
	.wake_by_ref = orphan_waker_wake,
	.drop = orphan_waker_drop,
};

/*
 * The orphan's reactor is being freed.  Its source is freed with it, so
 * register the pidfd with the default reactor, which lives as long as
 * the process; failing that, wait for the child here: never a zombie.
 */
static void orphan_move(struct rouse_process *p)
{
	struct rouse_reactor *d;

	p->io = NULL;
	if (rouse_reactor_default(&d) == 0 && d != p->reactor &&
	    rouse_io_register(d, p->pidfd, &p->io) == 0) {
		rouse__debug("pid %d: its reactor is freed; the default "
			     "reactor reaps it", (int)p->pid);
		p->reactor = d;
		rouse_io_readable_init(&p->orphan, p->io);
		orphan_reap(p);
		return;
	}
	rouse__warn("pid %d: its reactor is freed and no other can reap it; "
		    "waiting for it to end", (int)p->pid);
	process_reap(p, 0);
	process_release(p);
}

/*
 * Poll the orphan's readiness future, and reap when the child has ended.
 * After a PENDING poll, p is the reactor's: a wake may already be running
 * on the reactor's thread, so nothing here touches p again.
 */
static void orphan_reap(struct rouse_process *p)
{
	struct rouse_waker w = { p, &orphan_waker_vt };
	struct rouse_context cx = { .waker = &w };
	int err;

	for (;;) {
		if (rouse_future_poll(&p->orphan.op.base, &cx) ==
		    ROUSE_PENDING)
			return;
		err = p->orphan.result;
		rouse_future_drop(&p->orphan.op.base);
		if (err == -ECANCELED) {
			orphan_move(p);
			return;
		}
		if (err < 0 || process_reap(p, WNOHANG) != 0)
			break;
		/* Readable, yet running: wait for the next edge. */
		rouse_io_clear(p->io, ROUSE_IO_READABLE);
		rouse_io_readable_init(&p->orphan, p->io);
	}
	process_release(p);
}

/* ---- spawning ---------------------------------------------------------- */

static int config_check(const struct rouse_process_config *c)
{
	int i;

	if (c->path == NULL || c->argv == NULL || c->argv[0] == NULL ||
	    (c->flags & ~(unsigned int)(ROUSE_PROCESS_KILL_ON_DROP |
					ROUSE_PROCESS_SEARCH_PATH |
					ROUSE_PROCESS_NEW_GROUP)))
		return -EINVAL;
	for (i = 0; i < 3; i++)
		if (c->stdio[i] < ROUSE_STDIO_PIPE)
			return -EINVAL;
	return 0;
}

ROUSE__PUBLIC int rouse_process_config_init(struct rouse_process_config *c)
{
	if (c == NULL)
		return -EINVAL;
	memset(c, 0, sizeof(*c));
	c->stdio[0] = c->stdio[1] = c->stdio[2] = ROUSE_STDIO_INHERIT;
	return 0;
}

/*
 * fd as a close-on-exec descriptor above 2, so that the file actions'
 * dup2 onto 0, 1 and 2 never overwrite one another's sources.  fd is
 * closed unless it is returned.
 */
static int above_stdio(int fd)
{
	int moved, err;

	if (fd > 2)
		return fd;
	moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	err = -errno;
	close(fd);
	return moved >= 0 ? moved : err;
}

/*
 * What the child's descriptor n comes from: *child is a descriptor of
 * ours for the file actions to dup onto n, or -1 (inherit, /dev/null).
 * A pipe's other end becomes p->stdio[n].
 */
static int stdio_prepare(struct rouse_process *p, int how, int n, int *child)
{
	int fds[2], mine, err;

	*child = -1;
	if (how == ROUSE_STDIO_INHERIT || how == ROUSE_STDIO_NULL)
		return 0;
	if (how >= 0) {
		/* A copy, so that the child gets what how is now. */
		*child = fcntl(how, F_DUPFD_CLOEXEC, 3);
		return *child >= 0 ? 0 : -errno;
	}
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	mine = n == 0 ? fds[1] : fds[0];
	*child = above_stdio(n == 0 ? fds[0] : fds[1]);
	if (*child < 0) {
		err = *child;
		close(mine);
		*child = -1;
		return err;
	}
	/* Nonblocking on our side only: the ends are two open files. */
	err = rouse_stream_open(p->reactor, mine, &p->stdio[n]);
	if (err < 0) {
		close(mine);
		close(*child);
		*child = -1;
	}
	return err;
}

static int actions_make(posix_spawn_file_actions_t *fa,
			const struct rouse_process_config *c,
			const int child[3])
{
	int n, err = 0;

	for (n = 0; n < 3 && err == 0; n++) {
		int mode = n == 0 ? O_RDONLY : O_WRONLY;

		if (child[n] >= 0)
			err = posix_spawn_file_actions_adddup2(fa, child[n], n);
		else if (c->stdio[n] == ROUSE_STDIO_NULL)
			err = posix_spawn_file_actions_addopen(
				fa, n, "/dev/null", mode, 0);
	}
	/* After the opens: a relative path is found in the new directory. */
	if (err == 0 && c->cwd != NULL)
		err = posix_spawn_file_actions_addchdir_np(fa, c->cwd);
	return err;
}

/*
 * An empty signal mask, and every signal at its default action; with
 * NEW_GROUP, a process group of the child's own, whose id is its pid.
 */
static int attr_make(posix_spawnattr_t *attr, unsigned int flags)
{
	short spawn_flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
	sigset_t none, all;
	int err;

	sigemptyset(&none);
	sigfillset(&all);
	if (flags & ROUSE_PROCESS_NEW_GROUP)
		spawn_flags |= POSIX_SPAWN_SETPGROUP;
	err = posix_spawnattr_setsigmask(attr, &none);
	if (err == 0)
		err = posix_spawnattr_setsigdefault(attr, &all);
	if (err == 0)
		err = posix_spawnattr_setpgroup(attr, 0);
	if (err == 0)
		err = posix_spawnattr_setflags(attr, spawn_flags);
	return err;
}

/* posix_spawn(3) or posix_spawnp(3); the result is an errno value. */
static int spawn_run(pid_t *pid, const struct rouse_process_config *c,
		     const int child[3])
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	char *const *envp = c->envp != NULL ? c->envp : environ;
	int err;

	err = posix_spawn_file_actions_init(&fa);
	if (err != 0)
		return err;
	err = posix_spawnattr_init(&attr);
	if (err != 0) {
		posix_spawn_file_actions_destroy(&fa);
		return err;
	}
	err = actions_make(&fa, c, child);
	if (err == 0)
		err = attr_make(&attr, c->flags);
	if (err == 0 && (c->flags & ROUSE_PROCESS_SEARCH_PATH))
		err = posix_spawnp(pid, c->path, &fa, &attr, c->argv, envp);
	else if (err == 0)
		err = posix_spawn(pid, c->path, &fa, &attr, c->argv, envp);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	return err;
}

/*
 * The pidfd of the child pid that posix_spawn() just made, or -errno.
 * On an error other than -ECHILD, the child is killed and reaped.
 */
static int pidfd_of_child(pid_t pid)
{
	siginfo_t si;
	int fd, err;

	fd = (int)syscall(SYS_pidfd_open, pid, 0);	/* always CLOEXEC */
	if (fd < 0) {
		err = -errno;
		if (err == -ESRCH)
			return -ECHILD;		/* reaped by someone else */
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		return err;
	}
	/* Still our child, and not a stranger with its pid (see above)? */
	memset(&si, 0, sizeof(si));
	if (waitid(PROCESS_P_PIDFD, (id_t)fd, &si,
		   WEXITED | WNOHANG | WNOWAIT) < 0 && errno == ECHILD) {
		close(fd);
		return -ECHILD;
	}
	return fd;
}

ROUSE__PUBLIC int rouse_process_spawn(struct rouse_reactor *r,
				      const struct rouse_process_config *c,
				      struct rouse_process **out)
{
	struct rouse_process *p;
	int child[3] = { -1, -1, -1 };
	pid_t pid;
	int n, err;

	if (r == NULL || c == NULL || out == NULL || config_check(c) < 0)
		return -EINVAL;
	if (rouse__inherited(r->fork_gen))
		return -ECHILD;
	p = rouse__calloc(1, sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	p->reactor = r;
	p->pidfd = -1;
	p->flags = c->flags;
	for (n = 0; n < 3; n++) {
		err = stdio_prepare(p, c->stdio[n], n, &child[n]);
		if (err < 0)
			goto fail;
	}
	err = -spawn_run(&pid, c, child);
	for (n = 0; n < 3; n++) {
		if (child[n] >= 0)
			close(child[n]);	/* the child has its copies */
		child[n] = -1;
	}
	if (err < 0)
		goto fail;
	p->pid = pid;
	p->pidfd = pidfd_of_child(pid);
	if (p->pidfd < 0) {
		err = p->pidfd;
		goto fail;
	}
	err = rouse_io_register(r, p->pidfd, &p->io);
	if (err < 0) {
		process_kill_reap(p);
		close(p->pidfd);
		goto fail;
	}
	rouse__debug("pid %d spawned: %s (pidfd %d)", (int)pid, c->path,
		     p->pidfd);
	*out = p;
	return 0;
fail:
	for (n = 0; n < 3; n++) {
		if (child[n] >= 0)
			close(child[n]);
		if (p->stdio[n] != NULL)
			rouse_stream_close(p->stdio[n]);
	}
	rouse__free(p);
	return err;
}

/* ---- the process object ----------------------------------------------- */

ROUSE__PUBLIC pid_t rouse_process_pid(const struct rouse_process *p)
{
	return p != NULL ? p->pid : -EINVAL;
}

ROUSE__PUBLIC int rouse_process_kill(struct rouse_process *p, int sig)
{
	if (p == NULL)
		return -EINVAL;
	if (rouse__inherited(p->reactor->fork_gen))
		return -ECHILD;
	return pidfd_signal(p->pidfd, sig);
}

/*
 * The group's id is the child's pid, and the kernel hands that number to
 * no other process while the child is unreaped or any member of its
 * group lives; so the signal reaches this group, or nobody (ESRCH).
 */
ROUSE__PUBLIC int rouse_process_kill_group(struct rouse_process *p, int sig)
{
	if (p == NULL || !(p->flags & ROUSE_PROCESS_NEW_GROUP))
		return -EINVAL;
	if (rouse__inherited(p->reactor->fork_gen))
		return -ECHILD;
	return kill(-p->pid, sig) < 0 ? -errno : 0;
}

ROUSE__PUBLIC struct rouse_stream *rouse_process_stdio(struct rouse_process *p,
						       int n)
{
	if (p == NULL || n < 0 || n > 2)
		return NULL;
	return p->stdio[n];
}

ROUSE__PUBLIC int rouse_process_take_stdio(struct rouse_process *p, int n,
					   struct rouse_stream **out)
{
	if (p == NULL || out == NULL || n < 0 || n > 2)
		return -EINVAL;
	if (p->stdio[n] == NULL)
		return -ENOENT;
	*out = p->stdio[n];
	p->stdio[n] = NULL;
	return 0;
}

ROUSE__PUBLIC int rouse_process_free(struct rouse_process *p)
{
	int n;

	if (p == NULL)
		return -EINVAL;
	if (rouse__inherited(p->reactor->fork_gen))
		return -ECHILD;		/* the parent's, left alone */
	/* First, so that a child that reads its input to the end ends. */
	for (n = 0; n < 3; n++) {
		if (p->stdio[n] != NULL)
			rouse_stream_close(p->stdio[n]);
		p->stdio[n] = NULL;
	}
	/* The group first, while the unreaped child keeps its id ours. */
	if ((p->flags & ROUSE_PROCESS_KILL_ON_DROP) &&
	    (p->flags & ROUSE_PROCESS_NEW_GROUP) && !p->reaped)
		kill(-p->pid, SIGKILL);
	if (process_reap(p, WNOHANG) == 0) {
		if (p->flags & ROUSE_PROCESS_KILL_ON_DROP) {
			process_kill_reap(p);
		} else {
			rouse__debug("pid %d: freed while it runs; reaped "
				     "when it ends", (int)p->pid);
			rouse_io_readable_init(&p->orphan, p->io);
			orphan_reap(p);
			return 0;
		}
	}
	process_release(p);
	return 0;
}

/* ---- the wait future --------------------------------------------------- */

static void wait_finish(struct rouse_process_wait *w, int err)
{
	int st = w->process->status;

	if (err < 0) {
		w->result = err;
		return;
	}
	w->status = st;
	w->exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	w->term_signal = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
	w->result = 0;
}

/*
 * waitid() first; while the child runs, clear the pidfd's readiness (io.c
 * keeps an edge that came meanwhile) and wait for it to become readable,
 * which it does once, when the child ends.
 */
static enum rouse_poll wait_poll(struct rouse_future *self,
				 struct rouse_context *cx)
{
	struct rouse_process_wait *w = (struct rouse_process_wait *)self;
	struct rouse_process *p = w->process;
	int err;

	for (;;) {
		if (w->waiting) {
			if (rouse_future_poll(&w->ready.op.base, cx) ==
			    ROUSE_PENDING)
				return ROUSE_PENDING;
			rouse_future_drop(&w->ready.op.base);
			w->waiting = 0;
			if (w->ready.result < 0) {
				w->result = w->ready.result;
				return ROUSE_READY;
			}
		}
		if (rouse__inherited(p->reactor->fork_gen)) {
			w->result = -ECHILD;
			return ROUSE_READY;
		}
		err = process_reap(p, WNOHANG);
		if (err != 0) {
			wait_finish(w, err);
			return ROUSE_READY;
		}
		rouse_io_clear(p->io, ROUSE_IO_READABLE);
		rouse_io_readable_init(&w->ready, p->io);
		w->waiting = 1;
	}
}

static void wait_drop(struct rouse_future *self)
{
	struct rouse_process_wait *w = (struct rouse_process_wait *)self;

	if (w->waiting)
		rouse_future_drop(&w->ready.op.base);
	w->waiting = 0;
}

static const struct rouse_future_vtable wait_vt = {
	.poll = wait_poll,
	.drop = wait_drop,
};

ROUSE__PUBLIC int rouse_process_wait_init(struct rouse_process_wait *w,
					  struct rouse_process *p)
{
	if (w == NULL || p == NULL)
		return -EINVAL;
	if (rouse__inherited(p->reactor->fork_gen))
		return -ECHILD;
	w->base.vtable = &wait_vt;
	w->process = p;
	w->waiting = 0;
	w->status = 0;
	w->exit_code = -1;
	w->term_signal = 0;
	w->result = 0;
	return 0;
}
