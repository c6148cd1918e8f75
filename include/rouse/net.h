/* SPDX-License-Identifier: MIT */
/*
 * <rouse/net.h> - addresses, streams, TCP, UDP and Unix sockets, in
 * librouse-reactor.
 *
 * An address is a value (struct rouse_addr) that parses from and formats
 * to text: "127.0.0.1:8080", "[::1]:8080", "/path/to/socket", "@abstract".
 * A stream is a registered, connected byte stream that the library owns
 * (a TCP or Unix stream socket, a pipe): its futures read, write, read or
 * write exactly a length, and shut down the writing side.  A TCP listener
 * hands out streams through an accept future; a connect future makes one,
 * to an address or to a host name that it looks up first.
 * Unix stream sockets work the same way.  A datagram socket (UDP, Unix)
 * sends and receives single datagrams or batches of them; Unix sockets
 * also pass descriptors and credentials.  A buffered reader over a stream
 * reads lines and up to delimiters; the copies move bytes inside the
 * kernel: a file to a stream (sendfile), a stream to a stream (splice),
 * and two streams both ways at once, as a TCP proxy does.  Every future
 * is caller-owned, made with its *_init(), and cancelled by its drop.
 * Everything returns 0 (or a count) or -errno.
 */
#ifndef ROUSE_NET_H
#define ROUSE_NET_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>

#include <rouse/dns.h>
#include <rouse/reactor.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- addresses ----------------------------------------------------------- */

/* An IPv4, IPv6 or Unix (path or abstract) socket address. */
struct rouse_addr {
	socklen_t len;			/* 0: no address */
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
		struct sockaddr_un un;
		struct sockaddr_storage storage;
	} u;
};

/* Room for any address rouse_addr_format() writes, with its NUL. */
#define ROUSE_ADDR_STRLEN 112

int rouse_addr_parse(struct rouse_addr *out, const char *text);
int rouse_addr_format(const struct rouse_addr *a, char *buf, size_t size);
int rouse_addr_from_sockaddr(struct rouse_addr *out,
			     const struct sockaddr *sa, socklen_t len);
/* The port of an IPv4 or IPv6 address, in host order. */
int rouse_addr_port(const struct rouse_addr *a);

/* ---- streams ---------------------------------------------------------- */

struct rouse_stream;

/* Adopt fd, a connected stream socket or a pipe end, on reactor r. */
int rouse_stream_open(struct rouse_reactor *r, int fd,
		      struct rouse_stream **out);
/* Deregister and close; every future of the stream must be dropped. */
int rouse_stream_close(struct rouse_stream *s);
int rouse_stream_fd(const struct rouse_stream *s);
/* shutdown(2): SHUT_WR sends the end of the stream (a half-close). */
int rouse_stream_shutdown(struct rouse_stream *s, int how);
int rouse_stream_set_nodelay(struct rouse_stream *s, int on);
int rouse_stream_set_keepalive(struct rouse_stream *s, int on);
int rouse_stream_local_addr(const struct rouse_stream *s,
			    struct rouse_addr *out);
int rouse_stream_peer_addr(const struct rouse_stream *s,
			   struct rouse_addr *out);

/*
 * One future type for the four transfers.  result: bytes transferred, 0 at
 * the end of the stream (read), or -errno.  A read_exact that meets the
 * end first is -EPIPE, with done saying how many bytes came.
 */
struct rouse_stream_rw {
	struct rouse_future base;
	struct rouse_io_rw op;		/* private */
	struct rouse_stream *stream;	/* private */
	unsigned char *buf;		/* private */
	size_t len;			/* private */
	int mode;			/* private */
	size_t done;			/* output: bytes so far */
	ssize_t result;			/* output */
};

int rouse_stream_read_init(struct rouse_stream_rw *f, struct rouse_stream *s,
			   void *buf, size_t len);
int rouse_stream_write_init(struct rouse_stream_rw *f, struct rouse_stream *s,
			    const void *buf, size_t len);
int rouse_stream_read_exact_init(struct rouse_stream_rw *f,
				 struct rouse_stream *s, void *buf,
				 size_t len);
int rouse_stream_write_all_init(struct rouse_stream_rw *f,
				struct rouse_stream *s, const void *buf,
				size_t len);

/*
 * readv(2) once, or writev(2) until every byte of the vector is written.
 * The caller's iovec array stays the caller's, unchanged, and must live
 * until the future is dropped.
 */
struct rouse_stream_rwv {
	struct rouse_future base;
	struct rouse_io_ready ready;	/* private */
	struct rouse_stream *stream;	/* private */
	const struct iovec *iov;	/* private */
	int iovcnt;			/* private */
	int writing;			/* private */
	int waiting;			/* private */
	size_t done;			/* output: bytes so far */
	ssize_t result;			/* output */
};

int rouse_stream_readv_init(struct rouse_stream_rwv *f,
			    struct rouse_stream *s, const struct iovec *iov,
			    int iovcnt);
int rouse_stream_writev_init(struct rouse_stream_rwv *f,
			     struct rouse_stream *s, const struct iovec *iov,
			     int iovcnt);

/* ---- TCP ---------------------------------------------------------------- */

struct rouse_tcp_listener;

enum {
	ROUSE_TCP_REUSEPORT = 0x1,	/* SO_REUSEPORT */
	ROUSE_TCP_V6ONLY = 0x2,		/* an IPv6 listener takes no IPv4 */
};

/* socket, SO_REUSEADDR, bind, listen (backlog <= 0: SOMAXCONN). */
int rouse_tcp_listen(struct rouse_reactor *r, const struct rouse_addr *addr,
		     unsigned int flags, int backlog,
		     struct rouse_tcp_listener **out);
int rouse_tcp_listener_close(struct rouse_tcp_listener *l);
int rouse_tcp_listener_fd(const struct rouse_tcp_listener *l);
/* The bound address: the port the kernel chose for port 0. */
int rouse_tcp_listener_addr(const struct rouse_tcp_listener *l,
			    struct rouse_addr *out);

/* Ready with a new stream on the listener's reactor, or -errno. */
struct rouse_tcp_accept {
	struct rouse_future base;
	struct rouse_io_accept op;	/* private */
	struct rouse_tcp_listener *listener;	/* private */
	struct rouse_stream *stream;	/* output: the caller's to close */
	struct rouse_addr peer;		/* output */
	int result;			/* output: 0 or -errno */
};

int rouse_tcp_accept_init(struct rouse_tcp_accept *f,
			  struct rouse_tcp_listener *l);

/* Ready with a connected stream, or -errno (-ECONNREFUSED, ...). */
struct rouse_tcp_connect {
	struct rouse_future base;
	struct rouse_io_connect op;	/* private */
	struct rouse_reactor *reactor;	/* private */
	struct rouse_io *io;		/* private */
	int fd;				/* private */
	struct rouse_stream *stream;	/* output: the caller's to close */
	int result;			/* output: 0 or -errno */
};

int rouse_tcp_connect_init(struct rouse_tcp_connect *f,
			   struct rouse_reactor *r,
			   const struct rouse_addr *addr);

/*
 * A connect to a host by name or number ("localhost", "::1") and a
 * service ("80", "http"): a lookup on the resolver threads (<rouse/dns.h>:
 * AF_UNSPEC, SOCK_STREAM, no flags), then a connect to each address in
 * getaddrinfo(3)'s order until one succeeds.  result: 0; the lookup's
 * error, with its EAI_* code in gai_error; or, when every address failed,
 * the last address's error.  peer: the address reached, or the last one
 * tried.
 */
struct rouse_tcp_connect_host {
	struct rouse_future base;
	struct rouse_dns_lookup lookup;	/* private */
	struct rouse_tcp_connect connect;	/* private */
	struct rouse_reactor *reactor;	/* private */
	struct addrinfo *addrs;		/* private: the lookup's answer */
	struct addrinfo *next;		/* private: the address to try next */
	int state;			/* private */
	struct rouse_stream *stream;	/* output: the caller's to close */
	struct rouse_addr peer;		/* output */
	int attempts;			/* output: addresses tried so far */
	int gai_error;			/* output: 0 or the lookup's EAI_* */
	int result;			/* output: 0 or -errno */
};

int rouse_tcp_connect_host_init(struct rouse_tcp_connect_host *f,
				struct rouse_reactor *r, const char *host,
				const char *service);

/* ---- buffered reading --------------------------------------------------- */

/*
 * A buffered reader over a stream, in a buffer the caller gives (and
 * keeps: the reader frees nothing).  The buffer's size is the longest
 * line it can return.  All fields are private; one operation at a time.
 */
struct rouse_bufreader {
	struct rouse_stream *stream;	/* private */
	unsigned char *buf;		/* private */
	size_t size;			/* private */
	size_t start;			/* private: first buffered byte */
	size_t end;			/* private: after the last one */
	int eof;			/* private: the stream has ended */
	int busy;			/* private: an operation is live */
};

int rouse_bufreader_init(struct rouse_bufreader *b, struct rouse_stream *s,
			 void *buf, size_t size);
/* The bytes buffered (*data, if not NULL, points at them), or -errno. */
ssize_t rouse_bufreader_buffered(const struct rouse_bufreader *b,
				 const void **data);
/* Discard the first n buffered bytes. */
int rouse_bufreader_consume(struct rouse_bufreader *b, size_t n);

/*
 * One future type for the three reads.  read_until and read_line: data
 * and len are the bytes taken, in the reader's buffer, valid until the
 * next operation on the reader; read_until's include the delimiter,
 * read_line's leave out the "\n" and a "\r" before it.  result: the bytes
 * taken from the stream, 0 at the end, or -errno (-EMSGSIZE: no delimiter
 * within max bytes, and nothing taken).  max counts the delimiter, and is
 * at most the buffer's size.  read: copied into the caller's buffer, data
 * and len say where and how much.
 */
struct rouse_bufreader_op {
	struct rouse_future base;
	struct rouse_stream_rw rd;	/* private */
	struct rouse_bufreader *reader;	/* private */
	unsigned char *dst;		/* private */
	size_t max;			/* private */
	size_t scanned;			/* private */
	int delim;			/* private */
	int mode;			/* private */
	int reading;			/* private */
	const char *data;		/* output */
	size_t len;			/* output */
	ssize_t result;			/* output */
};

int rouse_bufreader_read_until_init(struct rouse_bufreader_op *f,
				    struct rouse_bufreader *b, int delim,
				    size_t max);
int rouse_bufreader_read_line_init(struct rouse_bufreader_op *f,
				   struct rouse_bufreader *b, size_t max);
int rouse_bufreader_read_init(struct rouse_bufreader_op *f,
			      struct rouse_bufreader *b, void *buf,
			      size_t len);

/* ---- copies ------------------------------------------------------------ */

/*
 * sendfile(2) from a file to a stream, from offset on, until count bytes
 * are sent (count 0: until the end of the file) or the file ends.
 * result: the bytes sent, or -errno; done and offset say how far it came.
 * The file's own offset is left alone.
 */
struct rouse_sendfile {
	struct rouse_future base;
	struct rouse_io_ready ready;	/* private */
	struct rouse_stream *out;	/* private */
	int in_fd;			/* private */
	int waiting;			/* private */
	uint64_t count;			/* private */
	off_t offset;			/* output: the file's next byte */
	uint64_t done;			/* output: bytes sent so far */
	int64_t result;			/* output */
};

int rouse_sendfile_init(struct rouse_sendfile *f, struct rouse_stream *out,
			int in_fd, off_t offset, size_t count);

/*
 * splice(2) from one stream to another through a pipe of the future's
 * own (so neither needs to be a pipe), until count bytes are copied
 * (count 0: until the end of in).  result: the bytes written to out, or
 * -errno; done says how far it came.
 */
struct rouse_splice {
	struct rouse_future base;
	struct rouse_io_ready ready;	/* private */
	struct rouse_stream *out;	/* private */
	struct rouse_stream *in;	/* private */
	int pipe[2];			/* private */
	size_t pending;			/* private: bytes in the pipe */
	uint64_t count;			/* private */
	int waiting;			/* private */
	int ended;			/* private */
	uint64_t done;			/* output: bytes written so far */
	int64_t result;			/* output */
};

int rouse_splice_init(struct rouse_splice *f, struct rouse_stream *out,
		      struct rouse_stream *in, size_t count);

/*
 * Copy a to b and b to a at once, until both have ended; the end of
 * either is passed on as a half-close of the other (shutdown SHUT_WR).
 * result: 0, or -errno of the first error, which ends both directions.
 */
struct rouse_copy_bidi {
	struct rouse_future base;
	struct rouse_splice dir[2];	/* private: a to b, b to a */
	int running[2];			/* private */
	uint64_t a_to_b;		/* output: bytes */
	uint64_t b_to_a;		/* output: bytes */
	int result;			/* output */
};

int rouse_copy_bidirectional_init(struct rouse_copy_bidi *f,
				  struct rouse_stream *a,
				  struct rouse_stream *b);
/* ---- Unix stream sockets ----------------------------------------------- */

/*
 * A Unix listener binds a path ("/run/app.sock") or an abstract name
 * ("@app").  A path that exists already, a stale socket file included,
 * makes the bind fail with -EADDRINUSE: nothing is unlinked for the
 * caller, before the bind or after the close.
 */
struct rouse_unix_listener;

/* socket, bind, listen (backlog <= 0: SOMAXCONN). */
int rouse_unix_listen(struct rouse_reactor *r, const struct rouse_addr *addr,
		      int backlog, struct rouse_unix_listener **out);
int rouse_unix_listener_close(struct rouse_unix_listener *l);
int rouse_unix_listener_fd(const struct rouse_unix_listener *l);
int rouse_unix_listener_addr(const struct rouse_unix_listener *l,
			     struct rouse_addr *out);

/* Ready with a new stream on the listener's reactor, or -errno. */
struct rouse_unix_accept {
	struct rouse_future base;
	struct rouse_io_accept op;	/* private */
	struct rouse_unix_listener *listener;	/* private */
	struct rouse_stream *stream;	/* output: the caller's to close */
	struct rouse_addr peer;		/* output: often unnamed */
	int result;			/* output: 0 or -errno */
};

int rouse_unix_accept_init(struct rouse_unix_accept *f,
			   struct rouse_unix_listener *l);

/*
 * Ready with a connected stream, or -errno: -ENOENT when the path does
 * not exist, -ECONNREFUSED when nobody listens there (a stale socket
 * file, an abstract name nobody holds), -EAGAIN when the listener's
 * queue is full.
 */
struct rouse_unix_connect {
	struct rouse_future base;
	struct rouse_io_connect op;	/* private */
	struct rouse_io *io;		/* private */
	int fd;				/* private */
	struct rouse_stream *stream;	/* output: the caller's to close */
	int result;			/* output: 0 or -errno */
};

int rouse_unix_connect_init(struct rouse_unix_connect *f,
			    struct rouse_reactor *r,
			    const struct rouse_addr *addr);

/* socketpair(2): two connected streams, both the caller's to close. */
int rouse_unix_stream_pair(struct rouse_reactor *r,
			   struct rouse_stream *out[2]);

/* ---- datagram sockets: UDP and Unix ------------------------------------ */

/*
 * A registered datagram socket that the library owns: UDP over IPv4 or
 * IPv6, or a Unix datagram socket.  Its futures send and receive one
 * datagram, or a batch of them with one system call.
 */
struct rouse_dgram;

enum {
	ROUSE_UDP_REUSEADDR = 0x1,	/* SO_REUSEADDR */
	ROUSE_UDP_REUSEPORT = 0x2,	/* SO_REUSEPORT */
	ROUSE_UDP_V6ONLY = 0x4,		/* IPv6 only, no IPv4 */
	ROUSE_UDP_BROADCAST = 0x8,	/* SO_BROADCAST */
};

/* A UDP socket bound to addr ("0.0.0.0:0": any, a port the kernel picks). */
int rouse_udp_bind(struct rouse_reactor *r, const struct rouse_addr *addr,
		   unsigned int flags, struct rouse_dgram **out);
/* A Unix datagram socket bound to addr, or unbound when addr is NULL. */
int rouse_unix_dgram_bind(struct rouse_reactor *r,
			  const struct rouse_addr *addr,
			  struct rouse_dgram **out);
/* socketpair(2): two connected Unix datagram sockets. */
int rouse_unix_dgram_pair(struct rouse_reactor *r, struct rouse_dgram *out[2]);
/* Adopt fd, a datagram socket of any family, on reactor r. */
int rouse_dgram_open(struct rouse_reactor *r, int fd,
		     struct rouse_dgram **out);
/* Deregister and close; every future of the socket must be dropped. */
int rouse_dgram_close(struct rouse_dgram *d);
int rouse_dgram_fd(const struct rouse_dgram *d);
/* Send to and receive from addr only; NULL dissolves the association. */
int rouse_dgram_connect(struct rouse_dgram *d, const struct rouse_addr *addr);
int rouse_dgram_local_addr(const struct rouse_dgram *d,
			   struct rouse_addr *out);
int rouse_dgram_peer_addr(const struct rouse_dgram *d,
			  struct rouse_addr *out);

/*
 * Send one datagram, or receive one.  result: bytes sent, or bytes stored
 * in the buffer (0 is an empty datagram, not an end), or -errno.  A
 * datagram longer than the buffer is cut to it, the rest is lost, and
 * truncated says so.
 */
struct rouse_dgram_rw {
	struct rouse_future base;
	struct rouse_io_ready ready;	/* private */
	struct rouse_dgram *dgram;	/* private */
	void *buf;			/* private */
	size_t len;			/* private */
	int writing;			/* private */
	int waiting;			/* private */
	/* send: private, the destination; receive: output, the sender
	   (len 0: it has no address) */
	struct rouse_addr addr;
	int truncated;			/* output */
	ssize_t result;			/* output */
};

/* to NULL: the connected peer. */
int rouse_dgram_send_to_init(struct rouse_dgram_rw *f, struct rouse_dgram *d,
			     const void *buf, size_t len,
			     const struct rouse_addr *to);
int rouse_dgram_recv_from_init(struct rouse_dgram_rw *f,
			       struct rouse_dgram *d, void *buf, size_t len);

/*
 * sendmmsg(2) or recvmmsg(2) over the caller's array of vlen messages,
 * once: result is the number of messages sent or received (at least 1),
 * each one's msg_len set, or -errno.  The array and everything it points
 * to are the caller's, and must live until the future is dropped.
 */
struct mmsghdr;

struct rouse_dgram_mmsg {
	struct rouse_future base;
	struct rouse_io_ready ready;	/* private */
	struct rouse_dgram *dgram;	/* private */
	struct mmsghdr *msgs;		/* private */
	unsigned int vlen;		/* private */
	int writing;			/* private */
	int waiting;			/* private */
	int result;			/* output */
};

int rouse_dgram_sendmmsg_init(struct rouse_dgram_mmsg *f,
			      struct rouse_dgram *d, struct mmsghdr *msgs,
			      unsigned int vlen);
int rouse_dgram_recvmmsg_init(struct rouse_dgram_mmsg *f,
			      struct rouse_dgram *d, struct mmsghdr *msgs,
			      unsigned int vlen);

/* ---- descriptors and credentials over Unix sockets --------------------- */

/* The most descriptors one message carries (the kernel's SCM_MAX_FD). */
#define ROUSE_UNIX_MAX_FDS 253

/* Room for the largest control message: descriptors, credentials, a pidfd. */
#define ROUSE_UNIX_CONTROL_LEN                                   \
	(CMSG_SPACE(ROUSE_UNIX_MAX_FDS * sizeof(int)) +         \
	 CMSG_SPACE(3 * sizeof(int)) + CMSG_SPACE(sizeof(int)))

/* SO_PASSCRED: fd, a Unix socket, receives the senders' credentials. */
int rouse_unix_set_passcred(int fd, int on);

/* A sender's credentials, as SCM_CREDENTIALS carries them. */
struct rouse_unix_cred {
	pid_t pid;
	uid_t uid;
	gid_t gid;
};

/*
 * sendmsg(2) with descriptors and, optionally, credentials; recvmsg(2)
 * that takes them.  A send on a stream writes the whole buffer (the
 * control message goes with its first byte); a receive takes what one
 * recvmsg(2) gives.  result: bytes (0 at the end of a stream) or -errno.
 * Received descriptors are the caller's, close-on-exec; when more came
 * than fit (or the credentials did not), ctrunc is set and the extra ones
 * were closed: none is ever left open unseen.
 */
struct rouse_unix_msg {
	struct rouse_future base;
	struct rouse_io_ready ready;	/* private */
	struct rouse_io *io;		/* private */
	int fd;				/* private */
	int kind;			/* private */
	int waiting;			/* private */
	unsigned char *buf;		/* private */
	size_t len;			/* private */
	int *fds;			/* private: where received ones go */
	int max_fds;			/* private */
	size_t controllen;		/* private */
	struct rouse_addr to;		/* private */
	union {
		size_t align;
		unsigned char buf[ROUSE_UNIX_CONTROL_LEN];
	} control;			/* private */
	size_t done;			/* output: bytes so far */
	int nfds;			/* output: descriptors received */
	int ctrunc;			/* output: control data was cut */
	int truncated;			/* output: a datagram was cut */
	int has_cred;			/* output: cred is set */
	struct rouse_unix_cred cred;	/* output */
	struct rouse_addr from;		/* output: a datagram's sender */
	ssize_t result;			/* output */
};

int rouse_unix_sendmsg_init(struct rouse_unix_msg *f, struct rouse_stream *s,
			    const void *buf, size_t len, const int *fds,
			    int nfds, int send_cred);
int rouse_unix_recvmsg_init(struct rouse_unix_msg *f, struct rouse_stream *s,
			    void *buf, size_t len, int *fds, int max_fds);
/* to NULL: the connected peer. */
int rouse_unix_dgram_sendmsg_init(struct rouse_unix_msg *f,
				  struct rouse_dgram *d,
				  const struct rouse_addr *to,
				  const void *buf, size_t len,
				  const int *fds, int nfds, int send_cred);
int rouse_unix_dgram_recvmsg_init(struct rouse_unix_msg *f,
				  struct rouse_dgram *d, void *buf,
				  size_t len, int *fds, int max_fds);

#ifdef __cplusplus
}
#endif

#endif /* ROUSE_NET_H */
