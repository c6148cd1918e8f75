// SPDX-License-Identifier: MIT
/*
 * tests/echo-clients.c - runs examples/echo-server as a user would, and
 * puts 100 concurrent clients through it; or through examples/tcp-proxy
 * in front of it.
 *
 *   tests/echo-clients PATH-TO-ECHO-SERVER [PATH-TO-TCP-PROXY [HOST]]
 *
 * The server is started on port 0; the port it got is read from its
 * "listening on" line.  Every client connects, sends CLIENT_BYTES bytes
 * of its own pseudo-random stream and reads the echo back while it
 * sends, checking every byte against the stream; all 100 are open at
 * once and driven by one poll(2) loop.  Then SIGTERM stops the server,
 * which must exit 0 and report the 101 connections (the first is a
 * client that half-closes after a pause: see half_close_client()).
 *
 * With a proxy, the proxy is started on port 0 too, with the server's
 * port on HOST as its upstream (HOST:PORT; 127.0.0.1 by default, and a
 * name such as localhost makes the proxy look it up for every
 * connection: it must lead to 127.0.0.1, where the server listens, at
 * one of its addresses), and the clients connect to the proxy: the
 * half-closing client then proves that the proxy passes a half-close on
 * each way (the server sees the client's end, and the client the end
 * the server sends when it closes).  The proxy is stopped first, the
 * same way, and must have written nothing but its two lines (an error of
 * a connection would be a third).
 *
 * Exit status 0 on success, 1 with a message otherwise.
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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define CLIENTS 100
#define CLIENT_BYTES 200000	/* more than a socket buffer holds */
#define CHUNK 16384
/* A loop with no progress for this long is a hang (not a speed check). */
#define STALL_MS 120000

struct client {
	int fd, idx;
	size_t sent, received;
};

static pid_t server = -1, proxy = -1;

__attribute__((noreturn, format(printf, 1, 2)))
static void fail(const char *fmt, ...)
{
	va_list ap;

	fputs("echo-clients: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (server > 0)
		kill(server, SIGKILL);
	if (proxy > 0)
		kill(proxy, SIGKILL);
	exit(1);
}

/* Byte off of client idx's stream: splitmix64's mix of (idx, off). */
static unsigned char stream_byte(int idx, size_t off)
{
	uint64_t z = ((uint64_t)idx << 40) + off;

	z += UINT64_C(0x9e3779b97f4a7c15);
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return (unsigned char)(z ^ (z >> 31));
}

/* Read the server's output up to the first newline into line. */
static void read_line(int fd, char *line, size_t size)
{
	size_t len = 0;

	while (len + 1 < size) {
		ssize_t n = read(fd, line + len, 1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			fail("the server ended before it listened (%s)",
			     n < 0 ? strerror(errno) : "end of output");
		if (line[len] == '\n')
			break;
		len++;
	}
	line[len] = '\0';
}

/*
 * Start argv[0] with its output (and its errors too, with both set) on a
 * pipe whose reading end goes to *out_fd.
 */
static pid_t start_prog(char *const argv[], bool both, int *out_fd)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) != 0)
		fail("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		fail("fork: %s", strerror(errno));
	if (pid == 0) {
		if (dup2(p[1], STDOUT_FILENO) < 0 ||
		    (both && dup2(p[1], STDERR_FILENO) < 0))
			_exit(127);
		execv(argv[0], argv);
		fprintf(stderr, "echo-clients: exec %s: %s\n", argv[0],
			strerror(errno));
		_exit(127);
	}
	close(p[1]);
	*out_fd = p[0];
	return pid;
}

/* The rest of fd's output, up to its end, in rest (size bytes). */
static void read_rest(int fd, char *rest, size_t size)
{
	size_t len = 0;

	for (;;) {
		ssize_t n = read(fd, rest + len, size - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || (len += (size_t)n) == size - 1)
			break;
	}
	rest[len] = '\0';
	close(fd);
}

/* Stop pid with SIGTERM; it must exit 0. */
static void stop_prog(pid_t pid, const char *name, int fd, char *rest,
		      size_t size)
{
	int status;

	if (kill(pid, SIGTERM) != 0)
		fail("kill: %s", strerror(errno));
	read_rest(fd, rest, size);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			fail("waitpid: %s", strerror(errno));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail("%s ended with status 0x%x; it printed:\n%s", name,
		     status, rest);
}

static int connect_client(uint16_t port)
{
	struct sockaddr_in addr = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		fail("socket: %s", strerror(errno));
	addr.sin_port = htons(port);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* Blocking connect: the server's backlog takes all 100. */
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0)
		fail("connect: %s", strerror(errno));
	if (fcntl(fd, F_SETFL, O_NONBLOCK) != 0)
		fail("fcntl: %s", strerror(errno));
	return fd;
}

/* Send what the socket takes of c's stream. */
static void client_send(struct client *c)
{
	unsigned char buf[CHUNK];

	while (c->sent < CLIENT_BYTES) {
		size_t want = CLIENT_BYTES - c->sent, i;
		ssize_t n;

		if (want > CHUNK)
			want = CHUNK;
		for (i = 0; i < want; i++)
			buf[i] = stream_byte(c->idx, c->sent + i);
		n = send(c->fd, buf, want, MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			fail("send: %s", strerror(errno));
		c->sent += (size_t)n;
	}
}

/* Read the echo that is there and check every byte of it. */
static void client_receive(struct client *c)
{
	unsigned char buf[CHUNK];

	for (;;) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), 0), i;

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			fail("client %d: recv: %s", c->idx, strerror(errno));
		if (n == 0)
			fail("client %d: the server closed after %zu of %d "
			     "bytes", c->idx, c->received, CLIENT_BYTES);
		if (c->received + (size_t)n > c->sent)
			fail("client %d: %zu bytes echoed, %zu sent", c->idx,
			     c->received + (size_t)n, c->sent);
		for (i = 0; i < n; i++)
			if (buf[i] != stream_byte(c->idx,
						  c->received + (size_t)i))
				fail("client %d: byte %zu differs", c->idx,
				     c->received + (size_t)i);
		c->received += (size_t)n;
		if (c->received == CLIENT_BYTES)
			return;
	}
}

/*
 * One more client, the way a half-closing peer behaves: it connects,
 * lets the server's read wait (and its reactor turn) for 100 ms, sends a
 * line and half-closes.  The echo must come back, and then the end of the
 * stream: the server saw the end of file after its short read, and
 * closed the connection.
 */
static void half_close_client(uint16_t port)
{
	static const char msg[] = "half-closed\n";
	struct pollfd pfd;
	char buf[64];
	size_t got = 0;
	int fd = connect_client(port);

	/* Not a timing check: only an order of events that used to hang. */
	poll(NULL, 0, 100);
	if (send(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL) !=
	    (ssize_t)sizeof(msg) - 1)
		fail("half-close client: send: %s", strerror(errno));
	if (shutdown(fd, SHUT_WR) != 0)
		fail("half-close client: shutdown: %s", strerror(errno));
	for (;;) {
		ssize_t n;

		pfd.fd = fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, STALL_MS) == 0)
			fail("half-close client: no end of file from the "
			     "server after %zu bytes", got);
		n = recv(fd, buf + got, sizeof(buf) - got, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0)
			fail("half-close client: recv: %s", strerror(errno));
		if (n == 0)
			break;
		got += (size_t)n;
		if (got == sizeof(buf))
			fail("half-close client: more echoed than sent");
	}
	if (got != sizeof(msg) - 1 || memcmp(buf, msg, got) != 0)
		fail("half-close client: the echo differs (%zu bytes)", got);
	close(fd);
}

static void run_clients(uint16_t port)
{
	static struct client cl[CLIENTS];
	struct pollfd pfd[CLIENTS];
	int i, left = CLIENTS;

	for (i = 0; i < CLIENTS; i++) {
		cl[i].fd = connect_client(port);
		cl[i].idx = i;
	}
	while (left > 0) {
		int n = 0, r;

		for (i = 0; i < CLIENTS; i++) {
			if (cl[i].fd < 0)
				continue;
			pfd[n].fd = cl[i].fd;
			pfd[n].events = POLLIN |
					(cl[i].sent < CLIENT_BYTES ? POLLOUT
								   : 0);
			n++;
		}
		r = poll(pfd, (nfds_t)n, STALL_MS);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			fail("poll: %s", strerror(errno));
		if (r == 0)
			fail("no client made progress for %d ms", STALL_MS);
		n = 0;
		for (i = 0; i < CLIENTS; i++) {
			short ev;

			if (cl[i].fd < 0)
				continue;
			ev = pfd[n++].revents;
			if (ev & POLLOUT)
				client_send(&cl[i]);
			if (ev & (POLLIN | POLLHUP | POLLERR))
				client_receive(&cl[i]);
			if (cl[i].received == CLIENT_BYTES) {
				close(cl[i].fd);
				cl[i].fd = -1;
				left--;
			}
		}
	}
}

int main(int argc, char **argv)
{
	char line[256], rest[4096], report[64], upstream[300];
	const char *host = argc == 4 ? argv[3] : "127.0.0.1";
	unsigned int port, pport;
	int out, pout = -1;

	if (argc < 2 || argc > 4 || strlen(host) > 255) {
		fprintf(stderr, "usage: %s PATH-TO-ECHO-SERVER "
			"[PATH-TO-TCP-PROXY [HOST]]\n", argv[0]);
		return 2;
	}
	{
		char *sargv[] = { argv[1], (char *)"0", NULL };

		server = start_prog(sargv, false, &out);
	}
	read_line(out, line, sizeof(line));
	if (sscanf(line, "echo-server: listening on 127.0.0.1:%u", &port) !=
		    1 || port == 0 || port > 65535)
		fail("unexpected first line: \"%s\"", line);
	if (argc >= 3) {
		char *pargv[] = { argv[2], (char *)"127.0.0.1:0", upstream,
				  NULL };

		snprintf(upstream, sizeof(upstream), "%s:%u", host, port);
		proxy = start_prog(pargv, true, &pout);
		read_line(pout, line, sizeof(line));
		if (sscanf(line, "tcp-proxy: listening on 127.0.0.1:%u",
			   &pport) != 1 || pport == 0 || pport > 65535)
			fail("unexpected first line of the proxy: \"%s\"",
			     line);
		port = pport;
	}

	half_close_client((uint16_t)port);
	run_clients((uint16_t)port);

	snprintf(report, sizeof(report), "stopping after %d connections",
		 CLIENTS + 1);
	if (proxy > 0) {
		char want[96];

		stop_prog(proxy, "the proxy", pout, rest, sizeof(rest));
		proxy = -1;
		snprintf(want, sizeof(want), "tcp-proxy: %s\n", report);
		if (strcmp(rest, want) != 0)
			fail("the proxy did not report %d connections, or "
			     "reported more:\n%s", CLIENTS + 1, rest);
	}
	stop_prog(server, "the server", out, rest, sizeof(rest));
	server = -1;
	if (strstr(rest, report) == NULL)
		fail("the server did not report %d connections:\n%s",
		     CLIENTS + 1, rest);
	printf("echo-clients: a half-closing client, then %d clients, "
	       "%d bytes each, echoed intact%s%s\n", CLIENTS, CLIENT_BYTES,
	       argc >= 3 ? " through the proxy to " : "",
	       argc >= 3 ? upstream : "");
	return 0;
}
