/* SPDX-License-Identifier: MIT */
/*
 * rouse/log.h - log levels and the sink type shared by both libraries.
 *
 * Logging is off unless ROUSE_LOG names a level (error, warn, info, debug,
 * trace) when a library is loaded, or a level is set from code with
 * rouse_executor_set_log_level(3) or rouse_reactor_set_log_level(3).  Each
 * library keeps its own level and sink, since neither links the other.
 */
#ifndef ROUSE_LOG_H
#define ROUSE_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

enum rouse_log_level {
	ROUSE_LOG_OFF = 0,
	ROUSE_LOG_ERROR = 1,
	ROUSE_LOG_WARN = 2,
	ROUSE_LOG_INFO = 3,
	ROUSE_LOG_DEBUG = 4,
	ROUSE_LOG_TRACE = 5,
};

/*
 * Where log lines go.  module is "executor" or "reactor"; message is one
 * line without its newline and without a time stamp.  Called with the
 * library's log lock held, so lines never interleave; it must not log
 * through rouse itself.
 */
typedef void rouse_log_fn(void *data, enum rouse_log_level level,
			  const char *module, const char *message);

#ifdef __cplusplus
}
#endif

#endif /* ROUSE_LOG_H */
