// SPDX-License-Identifier: MIT
/*
 * tests/http-clients.c - runs examples/http-server as a user would and
 * checks what it owes its clients.
 *
 *   tests/http-clients PATH-TO-HTTP-SERVER [SERVER-OPTION...]
 *
 * The server is started on port 0 with --timeout 300 (ms); the port is
 * read from its "listening on" line.  Then: keep-alive (three requests on
 * one connection), pipelining (twenty in one write, twenty answers),
 * HEAD, 404, 405, 400 and close on a malformed request, 431 and close
 * over 8 KiB of headers, 408 and close on a request that stalls, a
 * request split across writes, Connection: close and HTTP/1.0, and a
 * bounded load (32 connections, 200 requests each).  Last, a graceful
 * stop: on a connection the server has answered once, a request is half
 * sent, SIGTERM arrives, the rest of the request still gets its answer,
 * the connection then closes, and the server exits 0.  Exit status 0 on success, 1 with a message otherwise.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* A wait with no progress for this long is a hang (not a speed check). */
#define STALL_MS 60000

static pid_t server = -1;
static unsigned int port;
static int server_out = -1;	/* kept open: the server prints as it stops */
static const char *step = "starting";	/* what is being checked */

__attribute__((noreturn, format(printf, 1, 2)))
static void fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "http-clients: %s: ", step);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (server > 0)
		kill(server, SIGKILL);
	exit(1);
}

static int dial(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		fail("connect: %s", strerror(errno));
	return fd;
}

static void send_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			fail("send: %s", strerror(errno));
		buf += n;
		len -= (size_t)n;
	}
}

/* Read until want answers' status lines and bodies are in, or the end. */
static size_t recv_some(int fd, char *buf, size_t size, bool *eof)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t n;

	if (poll(&p, 1, STALL_MS) != 1)
		fail("no answer for %d ms", STALL_MS);
	n = recv(fd, buf, size, 0);
	if (n < 0 && errno != ECONNRESET)
		fail("recv: %s", strerror(errno));
	*eof = n <= 0;
	return n > 0 ? (size_t)n : 0;
}

static int count(const char *hay, size_t len, const char *needle)
{
	const char *p = hay, *end = hay + len;
	int n = 0;

	while ((p = memmem(p, (size_t)(end - p), needle, strlen(needle)))) {
		n++;
		p++;
	}
	return n;
}

/*
 * Read answers until n full "Hello, world!" bodies (or n status lines
 * of the given kind) came; returns what was read, NUL-terminated.
 */
static char *answers(int fd, const char *mark, int n, bool want_eof)
{
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap + 1);
	bool eof = false;

	if (buf == NULL)
		fail("out of memory");
	while (!eof && (count(buf, len, mark) < n || want_eof)) {
		if (len == cap && (buf = realloc(buf, (cap *= 2) + 1)) == NULL)
			fail("out of memory");
		len += recv_some(fd, buf + len, cap - len, &eof);
	}
	buf[len] = '\0';
	if (count(buf, len, mark) != n)
		fail("%d \"%s\" where %d were due; got:\n%s",
		     count(buf, len, mark), mark, n, buf);
	if (want_eof && !eof)
		fail("the connection stayed open after \"%s\"", mark);
	return buf;
}

static void expect(const char *request, const char *mark, int n,
		   bool closes)
{
	int fd = dial();

	step = request;
	send_all(fd, request, strlen(request));
	free(answers(fd, mark, n, closes));
	close(fd);
}

static const char GET[] = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";

static void load(void)
{
	enum { CONNS = 32, EACH = 200 };
	int fds[CONNS], i, k;

	for (i = 0; i < CONNS; i++)
		fds[i] = dial();
	for (k = 0; k < EACH; k++) {
		for (i = 0; i < CONNS; i++)
			send_all(fds[i], GET, sizeof(GET) - 1);
		for (i = 0; i < CONNS; i++)
			free(answers(fds[i], "Hello, world!", 1, false));
	}
	for (i = 0; i < CONNS; i++)
		close(fds[i]);
}

static void start(char **argv)
{
	char line[256];
	size_t len = 0;
	int p[2];

	if (pipe2(p, O_CLOEXEC) != 0)
		fail("pipe: %s", strerror(errno));
	server = fork();
	if (server < 0)
		fail("fork: %s", strerror(errno));
	if (server == 0) {
		dup2(p[1], STDOUT_FILENO);
		execv(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	while (len + 1 < sizeof(line) && read(p[0], line + len, 1) == 1 &&
	       line[len] != '\n')
		len++;
	line[len] = '\0';
	if (sscanf(line, "http-server: listening on 127.0.0.1:%u", &port) !=
	    1)
		fail("unexpected first line: \"%s\"", line);
	server_out = p[0];
}

int main(int argc, char **argv)
{
	char *args[16], big[9000], half[] = "GET / HTTP/1.1\r\nHost: t\r\n";
	int i, n = 0, fd, status;
	char *got;

	if (argc < 2 || argc > 12) {
		fprintf(stderr, "usage: %s HTTP-SERVER [OPTION...]\n", argv[0]);
		return 2;
	}
	args[n++] = argv[1];
	for (i = 2; i < argc; i++)
		args[n++] = argv[i];
	args[n++] = (char *)"--timeout";
	args[n++] = (char *)"300";
	args[n++] = (char *)"0";
	args[n] = NULL;
	start(args);

	step = "keep-alive";
	fd = dial();
	for (i = 0; i < 3; i++) {
		send_all(fd, GET, sizeof(GET) - 1);
		free(answers(fd, "Hello, world!", 1, false));
	}
	close(fd);
	step = "pipelining";
	fd = dial();
	{
		char many[20 * sizeof(GET)];

		for (i = 0; i < 20; i++)
			memcpy(many + i * (sizeof(GET) - 1), GET,
			       sizeof(GET) - 1);
		send_all(fd, many, 20 * (sizeof(GET) - 1));
		free(answers(fd, "Hello, world!", 20, false));
	}
	close(fd);
	expect("HEAD / HTTP/1.1\r\n\r\n", "200 OK", 1, false);
	expect("GET /nope HTTP/1.1\r\n\r\n", "404 Not Found", 1, false);
	expect("DELETE / HTTP/1.1\r\n\r\n", "405 Method", 1, false);
	expect("NONSENSE\r\n\r\n", "400 Bad Request", 1, true);
	expect("GET / HTTP/1.1\r\nno colon here\r\n\r\n", "400 Bad Request",
	       1, true);
	expect("GET / HTTP/1.1\r\nConnection: close\r\n\r\n", "Hello, world!",
	       1, true);
	expect("GET / HTTP/1.0\r\n\r\n", "Hello, world!", 1, true);
	expect("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
	       "GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 ", 2, false);
	/* Over 8 KiB of headers. */
	memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
	memset(big + 19, 'a', sizeof(big) - 20);
	big[sizeof(big) - 1] = '\0';
	expect(big, "431 Request Header", 1, true);
	step = "a split request, then a stalled one";
	fd = dial();
	send_all(fd, "GET / HT", 8);
	send_all(fd, "TP/1.1\r\n\r\n", 10);
	free(answers(fd, "Hello, world!", 1, false));
	send_all(fd, half, strlen(half));
	free(answers(fd, "408 Request Timeout", 1, true));
	close(fd);
	step = "load";
	load();

	step = "a graceful stop with a request in flight";
	fd = dial();
	/* One whole request first: the server has taken the connection. */
	send_all(fd, GET, sizeof(GET) - 1);
	free(answers(fd, "Hello, world!", 1, false));
	send_all(fd, half, strlen(half));
	if (kill(server, SIGTERM) != 0)
		fail("kill: %s", strerror(errno));
	/* The stop must not cut the request: finish it within the timeout. */
	send_all(fd, "\r\n", 2);
	got = answers(fd, "Hello, world!", 1, true);
	free(got);
	close(fd);
	while (waitpid(server, &status, 0) < 0)
		if (errno != EINTR)
			fail("waitpid: %s", strerror(errno));
	server = -1;
	close(server_out);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail("the server ended with status 0x%x", status);
	printf("http-clients: keep-alive, pipelining, errors, 408, load and "
	       "a graceful stop all as due\n");
	return 0;
}
