// SPDX-License-Identifier: MIT
/*
 * lib/log.c - ROUSE_LOG: levelled logging to stderr or a user sink.
 *
 * The level is one atomic int read relaxed at every log site, so a disabled
 * log costs a load and a branch.  Everything else (formatting, the sink,
 * the lock that keeps lines whole) happens only when a line is written.
 *
 * It calls the C library and pthreads, nothing else.  The files of both
 * libraries log through the macros of internal.h; executor/public.c and
 * reactor/reactor.c set the level and the sink.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <unistd.h>

#include "internal.h"

#define ROUSE__STR_(x) #x
#define ROUSE__STR(x) ROUSE__STR_(x)
#define ROUSE__LOG_LIBNAME "librouse-" ROUSE__STR(ROUSE__LIB)

atomic_int rouse__log_level = ROUSE_LOG_OFF;

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static rouse_log_fn *log_sink;	/* NULL: the built-in stderr sink */
static void *log_sink_data;

static const char *const level_names[] = {
	[ROUSE_LOG_OFF] = "OFF",     [ROUSE_LOG_ERROR] = "ERROR",
	[ROUSE_LOG_WARN] = "WARN",   [ROUSE_LOG_INFO] = "INFO",
	[ROUSE_LOG_DEBUG] = "DEBUG", [ROUSE_LOG_TRACE] = "TRACE",
};

/* Read ROUSE_LOG once, when the library is loaded. */
__attribute__((constructor))
static void log_init_from_env(void)
{
	const char *v = getenv("ROUSE_LOG");
	int level;

	if (v == NULL || *v == '\0')
		return;
	for (level = ROUSE_LOG_OFF; level <= ROUSE_LOG_TRACE; level++) {
		if (strcasecmp(v, level_names[level]) == 0) {
			atomic_store(&rouse__log_level, level);
			return;
		}
	}
	/* "warning" is taken for "warn", as other tools spell it. */
	if (strcasecmp(v, "warning") == 0) {
		atomic_store(&rouse__log_level, ROUSE_LOG_WARN);
		return;
	}
	fprintf(stderr, "rouse: ROUSE_LOG=%s is not one of off, error, warn, "
		"info, debug, trace; " ROUSE__LOG_LIBNAME " logging stays off\n",
		v);
}

/* The built-in sink: "HH:MM:SS.mmm LEVEL [module] message\n" on stderr. */
static void stderr_sink(enum rouse_log_level level, const char *module,
			const char *message)
{
	char line[1200];
	struct timeval tv;
	struct tm tm;
	int n;

	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	n = snprintf(line, sizeof(line), "%02d:%02d:%02d.%03ld %-5s [%s] %s\n",
		     tm.tm_hour, tm.tm_min, tm.tm_sec, (long)tv.tv_usec / 1000,
		     level_names[level], module, message);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	/* One write, so lines from several processes do not interleave. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

void rouse__log_write(enum rouse_log_level level, const char *module,
		      const char *fmt, ...)
{
	char message[1024];
	va_list ap;
	int saved_errno = errno, cancel_state;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);

	/* A thread cancelled in the sink would keep the lock forever. */
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
	pthread_mutex_lock(&log_lock);
	if (log_sink != NULL)
		log_sink(log_sink_data, level, module, message);
	else
		stderr_sink(level, module, message);
	pthread_mutex_unlock(&log_lock);
	pthread_setcancelstate(cancel_state, NULL);
	errno = saved_errno;
}

int rouse__log_set_level(enum rouse_log_level level)
{
	if ((int)level < ROUSE_LOG_OFF || level > ROUSE_LOG_TRACE)
		return -EINVAL;
	atomic_store(&rouse__log_level, (int)level);
	return 0;
}

int rouse__log_set_sink(rouse_log_fn *sink, void *data)
{
	pthread_mutex_lock(&log_lock);
	log_sink = sink;
	log_sink_data = sink != NULL ? data : NULL;
	pthread_mutex_unlock(&log_lock);
	return 0;
}
