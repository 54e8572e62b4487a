// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * quic_upstream: a QUIC echo server and client written for the Linux QUIC socket API as it
 * is proposed upstream, and for nothing else: <linux/quic.h>, libc and gnutls.  It drives the
 * TLS 1.3 handshake through gnutls' QUIC hooks exactly as the handshake choreography of that
 * API prescribes (full handshake, session resumption with 0-RTT, client migration), so that a
 * program written for the upstream API is shown to build (gcc -Wall -Wextra -Werror) and run
 * against this module unchanged.
 *
 *   quic_upstream server ADDR PORT [--cert F] [--key F] [--alpn A]
 *   quic_upstream client ADDR PORT [--cafile F] [--server-name N] [--alpn A]
 *                 [--request TEXT | --get PATH] [--session FILE]
 *                 [--resume FILE [--early-data]] [--migrate ADDR[:PORT] [--sync]]
 *
 * --sync: before it migrates, the client prints "migrate ready local=ADDR:PORT" and waits for
 * a line on stdin (a test drops what reaches the old address from then on).
 *
 * Each step prints one line on stdout ("<step> ok ..." or "FAIL <step>: ..."); the exit
 * status is 0 when every step worked, 1 when one failed, 2 for a usage error.
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <linux/quic.h>
#include <linux/tls.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

/*
 * Programs written for the upstream API define these masks themselves (the upstream header
 * does not): the flags the kernel accepts in stream_flags and in sendmsg()'s flags argument.
 */
#define QUIC_MSG_STREAM_FLAGS                                                          \
	(MSG_QUIC_STREAM_NEW | MSG_QUIC_STREAM_FIN | MSG_QUIC_STREAM_UNI |             \
	 MSG_QUIC_STREAM_DONTWAIT | MSG_QUIC_STREAM_SNDBLOCK)
#define QUIC_MSG_SENDMSG_FLAGS                                                         \
	(QUIC_MSG_STREAM_FLAGS | MSG_BATCH | MSG_MORE | MSG_DONTWAIT | MSG_NOSIGNAL |   \
	 MSG_WAITALL | MSG_QUIC_DATAGRAM)

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define TIMEOUT_MS 120000		/* the TCG guest is slow: handshakes take seconds */
#define MAX_MSG (64 * 1024)		/* largest TLS handshake message we reassemble */
#define MAX_TP 512			/* transport parameters extension (ABI 1.13) */
#define MAX_STREAMS 16			/* streams the echo server keeps at once */
#define MAX_CONNS 32
#define SESSION_MAGIC 0x51555053	/* "QUPS": our session file */
#define QUIC_TP_EXT_TYPE 0x39		/* RFC 9001 Section 8.2 */
#define TLS_HT_NEW_SESSION_TICKET 4
#define TLS_HT_END_OF_EARLY_DATA 5
#define TLS_HT_KEY_UPDATE 24
#define GNUTLS_HT_CHANGE_CIPHER_SPEC 254	/* gnutls' pseudo message: never sent on QUIC */
#define PRIORITY "NORMAL:-VERS-ALL:+VERS-TLS1.3:%DISABLE_TLS13_COMPAT_MODE:" \
	"-CIPHER-ALL:+AES-256-GCM:+CHACHA20-POLY1305:+AES-128-GCM:+AES-128-CCM"

struct stream_buf {
	__s64 id;
	int used;
	int fin;
	size_t len, cap;
	__u8 *data;
};

struct hs_event {
	struct hs_event *next;
	enum { EV_SEND, EV_SECRET, EV_PEER_TP } kind;
	__u8 level;		/* QUIC_CRYPTO_* */
	__u8 send;		/* EV_SECRET: direction */
	__u32 type;		/* EV_SECRET: TLS_CIPHER_* */
	size_t len;
	__u8 data[];
};

struct conn {
	int fd;
	int server;
	gnutls_session_t tls;
	struct hs_event *evs, **evtail;
	__u8 rx[QUIC_CRYPTO_MAX][MAX_MSG + 4];	/* handshake bytes by level */
	size_t rxlen[QUIC_CRYPTO_MAX];
	__u8 tp_local[MAX_TP];
	size_t tp_local_len;
	int peer_tp;		/* the peer's transport parameters arrived */
	int complete;		/* gnutls_handshake() returned 0 */
	int failed;
	char why[256];
	int alert;
	struct stream_buf streams[MAX_STREAMS];
	int migrated;		/* CONNECTION_MIGRATION events: local_migration + 1 */
	int closed;
	__u8 ticket[4096];	/* client: the NEW_SESSION_TICKET event's payload */
	size_t ticket_len;
};

struct opts {
	const char *mode, *addr, *port;
	const char *cert, *key, *cafile, *server_name, *alpn;
	const char *request, *get, *session, *resume, *migrate;
	int early_data, sync;
};

static gnutls_certificate_credentials_t cred;
static gnutls_anti_replay_t anti_replay;
static const struct opts *opt;

static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

static int fail(const char *step, const char *fmt, ...)
{
	va_list ap;

	printf("FAIL %s: ", step);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	return -1;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static int conn_error(struct conn *c, const char *fmt, ...)
{
	va_list ap;

	if (c->failed)
		return -1;
	va_start(ap, fmt);
	vsnprintf(c->why, sizeof(c->why), fmt, ap);
	va_end(ap);
	c->failed = 1;
	return -1;
}

/* -- addresses ------------------------------------------------------------------------- */

static int parse_addr(const char *host, const char *port, struct sockaddr_storage *ss,
		      socklen_t *len)
{
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
				  .ai_socktype = SOCK_DGRAM };
	struct addrinfo *ai;

	if (getaddrinfo(host, port, &hints, &ai))
		return -1;
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

static const char *addr_str(const struct sockaddr_storage *ss, char *buf, size_t size)
{
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		port = ntohs(a->sin_port);
		snprintf(buf, size, "%s:%d", host, port);
	} else {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		port = ntohs(a->sin6_port);
		snprintf(buf, size, "[%s]:%d", host, port);
	}
	return buf;
}

/* -- socket helpers -------------------------------------------------------------------- */

static int set_event(int fd, __u8 type)
{
	struct quic_event_option ev = { .type = type, .on = 1 };

	return setsockopt(fd, SOL_QUIC, QUIC_SOCKOPT_EVENT, &ev, sizeof(ev));
}

static ssize_t send_crypto(int fd, __u8 level, const void *data, size_t len, int more)
{
	char ctl[CMSG_SPACE(sizeof(struct quic_handshake_info))] = { 0 };
	struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = ctl, .msg_controllen = sizeof(ctl) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
	struct quic_handshake_info info = { .crypto_level = level };

	cm->cmsg_level = SOL_QUIC;
	cm->cmsg_type = QUIC_HANDSHAKE_INFO;
	cm->cmsg_len = CMSG_LEN(sizeof(info));
	memcpy(CMSG_DATA(cm), &info, sizeof(info));
	return sendmsg(fd, &msg, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
}

static ssize_t send_stream(int fd, __s64 sid, __u32 sflags, const void *data, size_t len)
{
	char ctl[CMSG_SPACE(sizeof(struct quic_stream_info))] = { 0 };
	struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = ctl, .msg_controllen = sizeof(ctl) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
	struct quic_stream_info info = { .stream_id = sid, .stream_flags = sflags };
	size_t done = 0;
	ssize_t n;

	if ((sflags & ~QUIC_MSG_STREAM_FLAGS) || (MSG_NOSIGNAL & ~QUIC_MSG_SENDMSG_FLAGS)) {
		errno = EINVAL;
		return -1;
	}
	cm->cmsg_level = SOL_QUIC;
	cm->cmsg_type = QUIC_STREAM_INFO;
	cm->cmsg_len = CMSG_LEN(sizeof(info));
	memcpy(CMSG_DATA(cm), &info, sizeof(info));
	/* A send is partial when it blocks on the window: the rest goes without NEW. */
	do {
		iov.iov_base = (__u8 *)data + done;
		iov.iov_len = len - done;
		n = sendmsg(fd, &msg, MSG_NOSIGNAL);
		if (n < 0)
			return -1;
		done += n;
		info.stream_flags &= ~MSG_QUIC_STREAM_NEW;
		memcpy(CMSG_DATA(cm), &info, sizeof(info));
	} while (done < len);
	return done;
}

/* -- gnutls hooks ---------------------------------------------------------------------- */

static __u8 quic_level(gnutls_record_encryption_level_t level)
{
	switch (level) {
	case GNUTLS_ENCRYPTION_LEVEL_INITIAL:
		return QUIC_CRYPTO_INITIAL;
	case GNUTLS_ENCRYPTION_LEVEL_EARLY:
		return QUIC_CRYPTO_EARLY;
	case GNUTLS_ENCRYPTION_LEVEL_HANDSHAKE:
		return QUIC_CRYPTO_HANDSHAKE;
	default:
		return QUIC_CRYPTO_APP;
	}
}

static gnutls_record_encryption_level_t gnutls_level(__u8 level)
{
	switch (level) {
	case QUIC_CRYPTO_INITIAL:
		return GNUTLS_ENCRYPTION_LEVEL_INITIAL;
	case QUIC_CRYPTO_HANDSHAKE:
		return GNUTLS_ENCRYPTION_LEVEL_HANDSHAKE;
	case QUIC_CRYPTO_EARLY:
		return GNUTLS_ENCRYPTION_LEVEL_EARLY;
	default:
		return GNUTLS_ENCRYPTION_LEVEL_APPLICATION;
	}
}

static __u32 cipher_type(gnutls_cipher_algorithm_t alg)
{
	switch (alg) {
	case GNUTLS_CIPHER_AES_128_GCM:
		return TLS_CIPHER_AES_GCM_128;
	case GNUTLS_CIPHER_AES_256_GCM:
		return TLS_CIPHER_AES_GCM_256;
	case GNUTLS_CIPHER_AES_128_CCM:
		return TLS_CIPHER_AES_CCM_128;
	case GNUTLS_CIPHER_CHACHA20_POLY1305:
		return TLS_CIPHER_CHACHA20_POLY1305;
	default:
		return 0;
	}
}

static int push_event(struct conn *c, int kind, __u8 level, __u8 send, __u32 type,
		      const void *data, size_t len)
{
	struct hs_event *ev = calloc(1, sizeof(*ev) + len);

	if (!ev)
		return conn_error(c, "out of memory");
	ev->kind = kind;
	ev->level = level;
	ev->send = send;
	ev->type = type;
	ev->len = len;
	memcpy(ev->data, data, len);
	*c->evtail = ev;
	c->evtail = &ev->next;
	return 0;
}

static int read_hook(gnutls_session_t s, gnutls_record_encryption_level_t level,
		     gnutls_handshake_description_t htype, const void *data, size_t len)
{
	struct conn *c = gnutls_session_get_ptr(s);

	if (htype == GNUTLS_HT_CHANGE_CIPHER_SPEC)
		return 0;
	return push_event(c, EV_SEND, quic_level(level), 0, 0, data, len);
}

static int secret_hook(gnutls_session_t s, gnutls_record_encryption_level_t level,
		       const void *rsecret, const void *wsecret, size_t len)
{
	struct conn *c = gnutls_session_get_ptr(s);
	__u32 type;

	type = cipher_type(level == GNUTLS_ENCRYPTION_LEVEL_EARLY ? gnutls_early_cipher_get(s) :
								   gnutls_cipher_get(s));
	if (!type || len > QUIC_CRYPTO_SECRET_BUFFER_SIZE)
		return conn_error(c, "TLS chose a cipher the kernel does not implement");
	if (wsecret && push_event(c, EV_SECRET, quic_level(level), 1, type, wsecret, len))
		return -1;
	if (rsecret && push_event(c, EV_SECRET, quic_level(level), 0, type, rsecret, len))
		return -1;
	return 0;
}

static int alert_hook(gnutls_session_t s, gnutls_record_encryption_level_t level,
		      gnutls_alert_level_t alevel, gnutls_alert_description_t desc)
{
	struct conn *c = gnutls_session_get_ptr(s);

	(void)level;
	(void)alevel;
	if (!c->alert)
		c->alert = desc;
	return 0;
}

/*
 * The peer's quic_transport_parameters.  A server sets them at once and fetches its own,
 * which gnutls writes into EncryptedExtensions later in the same call (ABI 5.2 steps 6-7):
 * compatible version negotiation may change ours.  A client queues them: they follow the
 * handshake secrets (ABI 5.1 step 9).
 */
static int tp_recv(gnutls_session_t s, const unsigned char *data, size_t len)
{
	struct conn *c = gnutls_session_get_ptr(s);
	socklen_t optlen = sizeof(c->tp_local);

	c->peer_tp = 1;
	if (!c->server)
		return push_event(c, EV_PEER_TP, 0, 0, 0, data, len);
	if (setsockopt(c->fd, SOL_QUIC, QUIC_SOCKOPT_TRANSPORT_PARAM_EXT, data, len))
		return conn_error(c, "setsockopt TRANSPORT_PARAM_EXT: %s", strerror(errno));
	if (getsockopt(c->fd, SOL_QUIC, QUIC_SOCKOPT_TRANSPORT_PARAM_EXT, c->tp_local, &optlen))
		return conn_error(c, "getsockopt TRANSPORT_PARAM_EXT: %s", strerror(errno));
	c->tp_local_len = optlen;
	return 0;
}

static int tp_send(gnutls_session_t s, gnutls_buffer_t buf)
{
	struct conn *c = gnutls_session_get_ptr(s);
	int rc;

	if (!c->tp_local_len)
		return conn_error(c, "no local transport parameters");
	rc = gnutls_buffer_append_data(buf, c->tp_local, c->tp_local_len);
	return rc < 0 ? rc : (int)c->tp_local_len;
}

/* gnutls reads and writes no records: the kernel carries the handshake messages. */
static ssize_t no_pull(gnutls_transport_ptr_t p, void *buf, size_t len)
{
	(void)buf;
	(void)len;
	gnutls_transport_set_errno((gnutls_session_t)p, EAGAIN);
	return -1;
}

static ssize_t no_push(gnutls_transport_ptr_t p, const void *buf, size_t len)
{
	(void)buf;
	(void)len;
	gnutls_transport_set_errno((gnutls_session_t)p, EIO);
	return -1;
}

struct seen {
	time_t exp;
	size_t len;
	__u8 key[64];
};

static struct seen replay_db[256];

/* gnutls' ClientHello recording (anti-replay of 0-RTT): a repeated key is refused. */
static int replay_add(void *ptr, time_t exp, const gnutls_datum_t *key,
		      const gnutls_datum_t *data)
{
	time_t now = time(NULL);
	struct seen *slot = NULL;
	size_t i, klen = key->size < 64 ? key->size : 64;

	(void)ptr;
	(void)data;
	for (i = 0; i < ARRAY_SIZE(replay_db); i++) {
		struct seen *e = &replay_db[i];

		if (e->len && e->exp >= now && e->len == klen && !memcmp(e->key, key->data, klen))
			return GNUTLS_E_DB_ENTRY_EXISTS;
		if (!slot && (!e->len || e->exp < now))
			slot = e;
	}
	if (!slot)
		slot = &replay_db[now % (ARRAY_SIZE(replay_db))];
	slot->exp = exp;
	slot->len = klen;
	memcpy(slot->key, key->data, klen);
	return 0;
}

static int tls_setup(struct conn *c, const __u8 *session, size_t session_len)
{
	unsigned int flags = GNUTLS_NONBLOCK | GNUTLS_NO_END_OF_EARLY_DATA;
	gnutls_datum_t alpn = { .data = (unsigned char *)opt->alpn,
				.size = strlen(opt->alpn) };
	const char *err = NULL;
	int rc;

	if (c->server || opt->early_data)
		flags |= GNUTLS_ENABLE_EARLY_DATA;
	rc = gnutls_init(&c->tls, flags | (c->server ? GNUTLS_SERVER : GNUTLS_CLIENT));
	if (rc < 0)
		return conn_error(c, "gnutls_init: %s", gnutls_strerror(rc));
	gnutls_session_set_ptr(c->tls, c);
	rc = gnutls_priority_set_direct(c->tls, PRIORITY, &err);
	if (rc < 0)
		return conn_error(c, "priority at %s: %s", err ? err : "?", gnutls_strerror(rc));
	rc = gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, cred);
	if (rc < 0)
		return conn_error(c, "credentials: %s", gnutls_strerror(rc));
	gnutls_transport_set_ptr(c->tls, c->tls);
	gnutls_transport_set_pull_function(c->tls, no_pull);
	gnutls_transport_set_push_function(c->tls, no_push);
	gnutls_handshake_set_read_function(c->tls, read_hook);
	gnutls_handshake_set_secret_function(c->tls, secret_hook);
	gnutls_alert_set_read_function(c->tls, alert_hook);
	rc = gnutls_session_ext_register(c->tls, "quic_transport_parameters", QUIC_TP_EXT_TYPE,
					 GNUTLS_EXT_TLS, tp_recv, tp_send, NULL, NULL, NULL,
					 GNUTLS_EXT_FLAG_TLS | GNUTLS_EXT_FLAG_CLIENT_HELLO |
					 GNUTLS_EXT_FLAG_EE);
	if (rc < 0)
		return conn_error(c, "extension 0x39: %s", gnutls_strerror(rc));
	rc = gnutls_alpn_set_protocols(c->tls, &alpn, 1, GNUTLS_ALPN_MANDATORY);
	if (rc < 0)
		return conn_error(c, "ALPN: %s", gnutls_strerror(rc));
	if (c->server) {
		__u8 key[64];
		socklen_t klen = sizeof(key);
		gnutls_datum_t k = { .data = key };

		/* ABI 5.2 step 5: the ticket key, stable per listener and client address. */
		if (getsockopt(c->fd, SOL_QUIC, QUIC_SOCKOPT_SESSION_TICKET, key, &klen))
			return conn_error(c, "getsockopt SESSION_TICKET: %s", strerror(errno));
		k.size = klen;
		rc = gnutls_session_ticket_enable_server(c->tls, &k);
		memset(key, 0, sizeof(key));
		if (rc < 0)
			return conn_error(c, "session tickets: %s", gnutls_strerror(rc));
		/* RFC 9001 Section 4.6.1: a QUIC ticket allows 0xffffffff or no early data. */
		gnutls_record_set_max_early_data_size(c->tls, 0xffffffffu);
		gnutls_anti_replay_enable(c->tls, anti_replay);
		return 0;
	}
	if (opt->server_name && inet_addr(opt->server_name) == INADDR_NONE)
		gnutls_server_name_set(c->tls, GNUTLS_NAME_DNS, opt->server_name,
				       strlen(opt->server_name));
	gnutls_session_set_verify_cert(c->tls, opt->server_name, 0);
	if (session) {
		rc = gnutls_session_set_data(c->tls, session, session_len);
		if (rc < 0)
			return conn_error(c, "saved session: %s", gnutls_strerror(rc));
	}
	return 0;
}

/*
 * What gnutls produced, in its order, to the kernel: handshake bytes (sendmsg with
 * QUIC_HANDSHAKE_INFO, MSG_MORE between them), secrets (CRYPTO_SECRET) and the client's view
 * of the server's transport parameters.  A client's 0-RTT send secret goes first: the kernel
 * must have it before the ClientHello (ABI 5.3 step 4).
 */
static int flush_events(struct conn *c)
{
	struct hs_event *ev, *next, **pp;
	int pass;

	for (pass = 0; pass < 2; pass++) {
		for (pp = &c->evs; (ev = *pp);) {
			int early = ev->kind == EV_SECRET && ev->level == QUIC_CRYPTO_EARLY;

			if (pass == 0 && !early) {
				pp = &ev->next;
				continue;
			}
			next = ev->next;
			if (!c->failed && ev->kind == EV_SEND) {
				int more = next && next->kind == EV_SEND;

				if (send_crypto(c->fd, ev->level, ev->data, ev->len, more) < 0)
					conn_error(c, "sendmsg handshake level %u: %s", ev->level,
						   strerror(errno));
			} else if (!c->failed && ev->kind == EV_SECRET) {
				struct quic_crypto_secret sec = { .send = ev->send,
								  .level = ev->level,
								  .type = ev->type };

				memcpy(sec.secret, ev->data, ev->len);
				if (setsockopt(c->fd, SOL_QUIC, QUIC_SOCKOPT_CRYPTO_SECRET, &sec,
					       sizeof(sec)))
					conn_error(c, "setsockopt CRYPTO_SECRET level %u %s: %s",
						   ev->level, ev->send ? "send" : "recv",
						   strerror(errno));
				memset(&sec, 0, sizeof(sec));
			} else if (!c->failed && ev->kind == EV_PEER_TP) {
				if (setsockopt(c->fd, SOL_QUIC, QUIC_SOCKOPT_TRANSPORT_PARAM_EXT,
					       ev->data, ev->len))
					conn_error(c, "setsockopt TRANSPORT_PARAM_EXT: %s",
						   strerror(errno));
			}
			memset(ev->data, 0, ev->len);
			*pp = next;
			free(ev);
		}
		c->evtail = pp;
	}
	return c->failed ? -1 : 0;
}

static int tls_drive(struct conn *c)
{
	int rc;

	if (!c->complete) {
		rc = gnutls_handshake(c->tls);
		if (rc == 0)
			c->complete = 1;
		else if (rc != GNUTLS_E_AGAIN && rc != GNUTLS_E_INTERRUPTED &&
			 gnutls_error_is_fatal(rc))
			conn_error(c, "TLS: %s (alert %d)", gnutls_strerror(rc), c->alert);
	}
	return flush_events(c);
}

/* CRYPTO bytes of one level, split anywhere: whole handshake messages go to gnutls. */
static int tls_feed(struct conn *c, __u8 level, const __u8 *data, size_t len)
{
	__u8 *buf = c->rx[level];
	size_t *have = &c->rxlen[level];

	if (level >= QUIC_CRYPTO_EARLY || *have + len > sizeof(c->rx[level]))
		return conn_error(c, "%zu handshake bytes at level %u", *have + len, level);
	memcpy(buf + *have, data, len);
	*have += len;
	while (*have >= 4) {
		size_t size = 4 + ((size_t)buf[1] << 16 | buf[2] << 8 | buf[3]);
		int rc;

		if (size > MAX_MSG)
			return conn_error(c, "a %zu-byte handshake message", size);
		if (*have < size)
			break;
		if (buf[0] == TLS_HT_KEY_UPDATE || buf[0] == TLS_HT_END_OF_EARLY_DATA ||
		    (level == QUIC_CRYPTO_APP && buf[0] != TLS_HT_NEW_SESSION_TICKET))
			return conn_error(c, "handshake message %u not allowed in QUIC", buf[0]);
		rc = gnutls_handshake_write(c->tls, gnutls_level(level), buf, size);
		if (rc < 0)
			return conn_error(c, "TLS: %s (alert %d)", gnutls_strerror(rc), c->alert);
		memmove(buf, buf + size, *have - size);
		*have -= size;
	}
	return 0;
}

/* -- receiving ------------------------------------------------------------------------- */

static struct stream_buf *stream_of(struct conn *c, __s64 sid)
{
	struct stream_buf *free_slot = NULL;
	int i;

	for (i = 0; i < MAX_STREAMS; i++) {
		if (c->streams[i].used && c->streams[i].id == sid)
			return &c->streams[i];
		if (!c->streams[i].used && !free_slot)
			free_slot = &c->streams[i];
	}
	if (free_slot) {
		memset(free_slot, 0, sizeof(*free_slot));
		free_slot->used = 1;
		free_slot->id = sid;
	}
	return free_slot;
}

static void stream_free(struct stream_buf *st)
{
	free(st->data);
	memset(st, 0, sizeof(*st));
}

static void on_event(struct conn *c, const __u8 *buf, size_t len)
{
	union quic_event ev;

	memset(&ev, 0, sizeof(ev));
	memcpy(&ev, buf + 1, len - 1 < sizeof(ev) ? len - 1 : sizeof(ev));
	switch (buf[0]) {
	case QUIC_EVENT_CONNECTION_MIGRATION:
		c->migrated = ev.local_migration + 1;
		if (c->server)
			say("migration ok peer moved local_migration=%u", ev.local_migration);
		break;
	case QUIC_EVENT_CONNECTION_CLOSE:
		c->closed = 1;
		break;
	case QUIC_EVENT_NEW_SESSION_TICKET:
		if (len - 1 <= sizeof(c->ticket)) {
			memcpy(c->ticket, buf + 1, len - 1);
			c->ticket_len = len - 1;
		}
		break;
	default:
		break;
	}
}

/* Reads one item (handshake chunk, event or stream data) within timeout_ms: 1, 0 on time
 * out, -1 when the connection is gone or failed.
 */
static int recv_one(struct conn *c, int timeout_ms)
{
	static __u8 buf[65536];
	char ctl[CMSG_SPACE(sizeof(struct quic_stream_info))];
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = ctl, .msg_controllen = sizeof(ctl) };
	struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
	struct quic_stream_info sinfo = { .stream_id = -1 };
	struct quic_handshake_info hinfo;
	int hs = 0, st = 0;
	struct cmsghdr *cm;
	ssize_t n;

	if (timeout_ms >= 0 && poll(&pfd, 1, timeout_ms) == 0)
		return 0;
	n = recvmsg(c->fd, &msg, MSG_DONTWAIT);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		c->closed = 1;
		return conn_error(c, "recvmsg: %s", strerror(errno));
	}
	if (msg.msg_flags & MSG_QUIC_NOTIFICATION) {
		if (n >= 1)
			on_event(c, buf, n);
		return 1;
	}
	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		if (cm->cmsg_level != SOL_QUIC)
			continue;
		if (cm->cmsg_type == QUIC_HANDSHAKE_INFO) {
			memcpy(&hinfo, CMSG_DATA(cm), sizeof(hinfo));
			hs = 1;
		} else if (cm->cmsg_type == QUIC_STREAM_INFO) {
			memcpy(&sinfo, CMSG_DATA(cm), sizeof(sinfo));
			st = 1;
		}
	}
	if (hs) {
		if (tls_feed(c, hinfo.crypto_level, buf, n) || tls_drive(c))
			return -1;
		return 1;
	}
	if (st) {
		struct stream_buf *s = stream_of(c, sinfo.stream_id);

		if (!s)
			return conn_error(c, "more than %d streams at once", MAX_STREAMS);
		if (s->len + n > s->cap) {
			size_t cap = (s->len + n) * 2;
			__u8 *p = realloc(s->data, cap);

			if (!p)
				return conn_error(c, "out of memory");
			s->data = p;
			s->cap = cap;
		}
		memcpy(s->data + s->len, buf, n);
		s->len += n;
		if (sinfo.stream_flags & MSG_QUIC_STREAM_FIN)
			s->fin = 1;
	}
	return 1;
}

/* Reads until cond(c, arg) holds; 0, or -1 with the reason in c->why. */
static int wait_for(struct conn *c, int (*cond)(struct conn *, const void *), const void *arg,
		    int timeout_ms, const char *what)
{
	long long end = now_ms() + timeout_ms;

	while (!cond(c, arg)) {
		long long left = end - now_ms();

		if (c->failed)
			return -1;
		if (c->closed)
			return conn_error(c, "the connection closed while waiting for %s", what);
		if (left <= 0)
			return conn_error(c, "no %s within %d s", what, timeout_ms / 1000);
		if (recv_one(c, left) < 0)
			return -1;
	}
	return 0;
}

static int is_complete(struct conn *c, const void *arg)
{
	(void)arg;
	return c->complete && !c->evs;
}

static int has_fin(struct conn *c, const void *arg)
{
	__s64 sid = *(const __s64 *)arg;
	int i;

	for (i = 0; i < MAX_STREAMS; i++)
		if (c->streams[i].used && c->streams[i].id == sid && c->streams[i].fin)
			return 1;
	return 0;
}

static int has_ticket(struct conn *c, const void *arg)
{
	(void)arg;
	return c->ticket_len > 0;
}

static int has_migrated(struct conn *c, const void *arg)
{
	(void)arg;
	return c->migrated > 0;
}

/* -- server ---------------------------------------------------------------------------- */

static void server_conn_free(struct conn *c)
{
	struct hs_event *ev, *next;
	int i;

	for (ev = c->evs; ev; ev = next) {
		next = ev->next;
		free(ev);
	}
	for (i = 0; i < MAX_STREAMS; i++)
		stream_free(&c->streams[i]);
	if (c->failed && !c->closed) {
		/* RFC 9001 Section 4.8: a TLS alert closes with CRYPTO_ERROR 0x100 + alert. */
		struct quic_connection_close cc = {
			.errcode = QUIC_TRANSPORT_ERROR_CRYPTO + (c->alert ? c->alert : 80),
		};

		setsockopt(c->fd, SOL_QUIC, QUIC_SOCKOPT_CONNECTION_CLOSE, &cc, sizeof(cc));
	}
	if (c->tls)
		gnutls_deinit(c->tls);
	close(c->fd);
	free(c);
}

/* Echo every finished stream: its bytes go back on it, with FIN. */
static void server_echo(struct conn *c)
{
	int i;

	for (i = 0; i < MAX_STREAMS; i++) {
		struct stream_buf *s = &c->streams[i];

		if (!s->used || !s->fin)
			continue;
		if (send_stream(c->fd, s->id, MSG_QUIC_STREAM_FIN, s->data, s->len) < 0)
			say("FAIL echo: stream %lld: %s", (long long)s->id, strerror(errno));
		else
			say("echo ok stream=%lld bytes=%zu", (long long)s->id, s->len);
		stream_free(s);
	}
}

static int server_readable(struct conn *c)
{
	int was_complete = c->complete;

	if (recv_one(c, -1) < 0 || c->closed) {
		if (c->failed && !c->closed)
			say("FAIL handshake: %s", c->why);
		say("closed");
		return -1;
	}
	if (c->complete && !was_complete) {
		unsigned int flags = gnutls_session_get_flags(c->tls);
		gnutls_datum_t proto = { 0 };

		if (!c->peer_tp || gnutls_alpn_get_selected_protocol(c->tls, &proto) < 0) {
			say("FAIL handshake: no transport parameters or no ALPN from the client");
			return -1;
		}
		say("handshake ok resumed=%d early_data=%d", gnutls_session_is_resumed(c->tls),
		    !!(flags & GNUTLS_SFLAGS_EARLY_DATA));
	}
	if (c->complete)
		server_echo(c);
	return 0;
}

static int run_server(void)
{
	struct conn *conns[MAX_CONNS] = { 0 };
	struct sockaddr_storage ss;
	socklen_t len;
	char abuf[80];
	int lfd, rc, i;

	if (parse_addr(opt->addr, opt->port, &ss, &len))
		return fail("listen", "bad address %s port %s", opt->addr, opt->port);
	rc = gnutls_certificate_set_x509_key_file(cred, opt->cert, opt->key, GNUTLS_X509_FMT_PEM);
	if (rc < 0)
		return fail("listen", "certificate %s, key %s: %s", opt->cert, opt->key,
			    gnutls_strerror(rc));
	if (gnutls_anti_replay_init(&anti_replay) < 0)
		return fail("listen", "gnutls_anti_replay_init");
	gnutls_anti_replay_set_add_function(anti_replay, replay_add);
	lfd = socket(ss.ss_family, SOCK_DGRAM, IPPROTO_QUIC);
	if (lfd < 0)
		return fail("listen", "socket(IPPROTO_QUIC): %s (is quic.ko loaded?)",
			    strerror(errno));
	if (setsockopt(lfd, SOL_QUIC, QUIC_SOCKOPT_ALPN, opt->alpn, strlen(opt->alpn)) ||
	    set_event(lfd, QUIC_EVENT_CONNECTION_MIGRATION) ||
	    set_event(lfd, QUIC_EVENT_CONNECTION_CLOSE))
		return fail("listen", "setsockopt: %s", strerror(errno));
	if (bind(lfd, (struct sockaddr *)&ss, len) || listen(lfd, 16))
		return fail("listen", "%s: %s", addr_str(&ss, abuf, sizeof(abuf)), strerror(errno));
	len = sizeof(ss);
	getsockname(lfd, (struct sockaddr *)&ss, &len);
	say("listening %s port=%d", addr_str(&ss, abuf, sizeof(abuf)),
	    ntohs(((struct sockaddr_in *)&ss)->sin_port));

	for (;;) {
		struct pollfd pfd[MAX_CONNS + 1];
		int n = 0;

		pfd[n++] = (struct pollfd){ .fd = lfd, .events = POLLIN };
		for (i = 0; i < MAX_CONNS; i++)
			pfd[n++] = (struct pollfd){ .fd = conns[i] ? conns[i]->fd : -1,
						    .events = POLLIN };
		if (poll(pfd, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			return fail("poll", "%s", strerror(errno));
		}
		if (pfd[0].revents & POLLIN) {
			struct conn *c = calloc(1, sizeof(*c));
			int fd;

			len = sizeof(ss);
			fd = accept(lfd, (struct sockaddr *)&ss, &len);
			for (i = 0; i < MAX_CONNS && conns[i]; i++)
				;
			if (fd < 0 || !c || i == MAX_CONNS) {
				say("FAIL accept: %s", fd < 0 ? strerror(errno) : "too many");
				if (fd >= 0)
					close(fd);
				free(c);
			} else {
				c->fd = fd;
				c->server = 1;
				c->evtail = &c->evs;
				say("accept ok peer=%s", addr_str(&ss, abuf, sizeof(abuf)));
				/* The ClientHello is queued already (ABI 5.2 step 4). */
				if (tls_setup(c, NULL, 0)) {
					say("FAIL handshake: %s", c->why);
					server_conn_free(c);
				} else {
					conns[i] = c;
				}
			}
		}
		for (i = 0; i < MAX_CONNS; i++) {
			if (!conns[i] || !(pfd[i + 1].revents & (POLLIN | POLLERR | POLLHUP)))
				continue;
			if (server_readable(conns[i])) {
				server_conn_free(conns[i]);
				conns[i] = NULL;
			}
		}
	}
}

/* -- client ---------------------------------------------------------------------------- */

struct saved {
	struct quic_transport_param tp;
	__u8 *session;
	size_t session_len;
};

static int save_session(const char *path, const struct quic_transport_param *tp,
			const gnutls_datum_t *data)
{
	__u32 hdr[3] = { SESSION_MAGIC, sizeof(*tp), data->size };
	FILE *f = fopen(path, "wb");
	int ok;

	if (!f)
		return -1;
	ok = fwrite(hdr, sizeof(hdr), 1, f) == 1 && fwrite(tp, sizeof(*tp), 1, f) == 1 &&
	     fwrite(data->data, data->size, 1, f) == 1;
	return (fclose(f) || !ok) ? -1 : 0;
}

static int load_session(const char *path, struct saved *sv)
{
	__u32 hdr[3];
	FILE *f = fopen(path, "rb");
	int ok;

	if (!f)
		return -1;
	ok = fread(hdr, sizeof(hdr), 1, f) == 1 && hdr[0] == SESSION_MAGIC &&
	     hdr[1] == sizeof(sv->tp) && hdr[2] > 0 && hdr[2] < (1u << 20) &&
	     fread(&sv->tp, sizeof(sv->tp), 1, f) == 1;
	if (ok) {
		sv->session = malloc(hdr[2]);
		sv->session_len = hdr[2];
		ok = sv->session && fread(sv->session, hdr[2], 1, f) == 1;
	}
	fclose(f);
	return ok ? 0 : -1;
}

static __s64 next_sid;	/* client-initiated bidirectional: 0, 4, 8 ... */

/* The answer on stream sid, to its FIN: the request echoed, or with --get any file. */
static int client_answer(struct conn *c, const char *step, __s64 sid, const __u8 *req,
			 size_t len)
{
	struct stream_buf *s;

	if (wait_for(c, has_fin, &sid, TIMEOUT_MS, "answer"))
		return fail(step, "stream %lld: %s", (long long)sid, c->why);
	s = stream_of(c, sid);
	if (opt->get) {
		__u8 md[32];
		char hex[65];
		int i;

		gnutls_hash_fast(GNUTLS_DIG_SHA256, s->data, s->len, md);
		for (i = 0; i < 32; i++)
			sprintf(hex + 2 * i, "%02x", md[i]);
		say("%s ok stream=%lld bytes=%zu sha256=%s", step, (long long)sid, s->len, hex);
	} else if (s->len != len || memcmp(s->data, req, len)) {
		return fail(step, "stream %lld: %zu bytes came back, not the %zu sent",
			    (long long)sid, s->len, len);
	} else {
		say("%s ok stream=%lld bytes=%zu", step, (long long)sid, s->len);
	}
	stream_free(s);
	return 0;
}

static int client_request(struct conn *c, const char *step, const __u8 *req, size_t len)
{
	__s64 sid = next_sid;

	next_sid += 4;
	if (send_stream(c->fd, sid, MSG_QUIC_STREAM_NEW | MSG_QUIC_STREAM_FIN, req, len) < 0)
		return fail(step, "sendmsg stream %lld: %s", (long long)sid, strerror(errno));
	return client_answer(c, step, sid, req, len);
}

/* ABI 5.3, after the first connection: the ticket, then the session and the peer's params. */
static int client_save(struct conn *c)
{
	struct quic_transport_param tp = { .remote = 1 };
	socklen_t optlen = sizeof(c->ticket);
	__u8 ticket[4096];
	gnutls_datum_t data;
	int rc;

	if (wait_for(c, has_ticket, NULL, TIMEOUT_MS, "NEW_SESSION_TICKET event"))
		return fail("ticket", "%s", c->why);
	if (getsockopt(c->fd, SOL_QUIC, QUIC_SOCKOPT_SESSION_TICKET, ticket, &optlen))
		return fail("ticket", "getsockopt SESSION_TICKET: %s", strerror(errno));
	if (optlen != c->ticket_len || memcmp(ticket, c->ticket, optlen))
		return fail("ticket", "SESSION_TICKET (%u bytes) is not the event's %zu bytes",
			    optlen, c->ticket_len);
	if (tls_feed(c, QUIC_CRYPTO_APP, c->ticket, c->ticket_len) || flush_events(c))
		return fail("ticket", "%s", c->why);
	say("ticket ok bytes=%zu", c->ticket_len);
	if (!(gnutls_session_get_flags(c->tls) & GNUTLS_SFLAGS_SESSION_TICKET))
		return fail("session", "TLS took no ticket from the NewSessionTicket");
	rc = gnutls_session_get_data2(c->tls, &data);
	if (rc < 0)
		return fail("session", "gnutls_session_get_data2: %s", gnutls_strerror(rc));
	optlen = sizeof(tp);
	if (getsockopt(c->fd, SOL_QUIC, QUIC_SOCKOPT_TRANSPORT_PARAM, &tp, &optlen))
		rc = fail("session", "getsockopt TRANSPORT_PARAM remote: %s", strerror(errno));
	else if (save_session(opt->session, &tp, &data))
		rc = fail("session", "cannot write %s: %s", opt->session, strerror(errno));
	else
		say("session ok file=%s bytes=%u max_early_data=%zu", opt->session, data.size,
		    gnutls_record_get_max_early_data_size(c->tls));
	gnutls_free(data.data);
	return rc < 0 ? -1 : 0;
}

static int client_migrate(struct conn *c)
{
	struct sockaddr_storage to, now;
	char host[INET6_ADDRSTRLEN + 2], port[8] = "0", abuf[80], bbuf[80];
	const char *colon = strrchr(opt->migrate, ':');
	socklen_t len, nlen = sizeof(now);

	snprintf(host, sizeof(host), "%s", opt->migrate);
	if (colon && strchr(opt->migrate, '.')) {	/* ADDR:PORT for IPv4 */
		host[colon - opt->migrate] = 0;
		snprintf(port, sizeof(port), "%s", colon + 1);
	}
	if (parse_addr(host, port, &to, &len))
		return fail("migrate", "bad address %s", opt->migrate);
	if (!strcmp(port, "0")) {
		/* Port 0 is EINVAL: take a free one on that address. */
		int u = socket(to.ss_family, SOCK_DGRAM, 0);
		socklen_t l = len;

		if (u < 0 || bind(u, (struct sockaddr *)&to, len) ||
		    getsockname(u, (struct sockaddr *)&to, &l))
			return fail("migrate", "no free port on %s: %s", host, strerror(errno));
		close(u);
	}
	if (set_event(c->fd, QUIC_EVENT_CONNECTION_MIGRATION))
		return fail("migrate", "setsockopt EVENT: %s", strerror(errno));
	if (opt->sync) {
		char line[16];

		getsockname(c->fd, (struct sockaddr *)&now, &nlen);
		say("migrate ready local=%s", addr_str(&now, abuf, sizeof(abuf)));
		if (!fgets(line, sizeof(line), stdin))
			return fail("migrate", "stdin closed before the go");
	}
	if (setsockopt(c->fd, SOL_QUIC, QUIC_SOCKOPT_CONNECTION_MIGRATION, &to, len))
		return fail("migrate", "setsockopt CONNECTION_MIGRATION %s: %s",
			    addr_str(&to, abuf, sizeof(abuf)), strerror(errno));
	if (wait_for(c, has_migrated, NULL, TIMEOUT_MS, "CONNECTION_MIGRATION event"))
		return fail("migrate", "%s", c->why);
	nlen = sizeof(now);
	getsockname(c->fd, (struct sockaddr *)&now, &nlen);
	if (c->migrated != 2)
		return fail("migrate", "the event says local_migration=%d", c->migrated - 1);
	if (strcmp(addr_str(&now, abuf, sizeof(abuf)), addr_str(&to, bbuf, sizeof(bbuf))))
		return fail("migrate", "getsockname() is %s, not %s", abuf, bbuf);
	say("migrate ok local=%s local_migration=1", abuf);
	return 0;
}

static int run_client(void)
{
	struct conn *c = calloc(1, sizeof(*c));
	struct sockaddr_storage ss;
	struct saved sv = { 0 };
	char request[1024], abuf[80];
	size_t reqlen;
	socklen_t len, optlen;
	int rc, early_queued = 0, soft_fail = 0;

	if (!c)
		return fail("connect", "out of memory");
	c->evtail = &c->evs;
	if (parse_addr(opt->addr, opt->port, &ss, &len))
		return fail("connect", "bad address %s port %s", opt->addr, opt->port);
	if (opt->get)
		snprintf(request, sizeof(request), "GET %s\r\n", opt->get);
	else
		snprintf(request, sizeof(request), "%s", opt->request);
	reqlen = strlen(request);
	if (opt->resume && load_session(opt->resume, &sv))
		return fail("resume", "cannot read a session from %s", opt->resume);
	rc = gnutls_certificate_set_x509_trust_file(cred, opt->cafile, GNUTLS_X509_FMT_PEM);
	if (rc <= 0)
		return fail("connect", "CA file %s: %s", opt->cafile,
			    rc < 0 ? gnutls_strerror(rc) : "no certificate");

	/* ABI 5.1 steps 1-3. */
	c->fd = socket(ss.ss_family, SOCK_DGRAM, IPPROTO_QUIC);
	if (c->fd < 0)
		return fail("connect", "socket(IPPROTO_QUIC): %s (is quic.ko loaded?)",
			    strerror(errno));
	if (set_event(c->fd, QUIC_EVENT_NEW_SESSION_TICKET) ||
	    set_event(c->fd, QUIC_EVENT_CONNECTION_CLOSE))
		return fail("connect", "setsockopt EVENT: %s", strerror(errno));
	if (connect(c->fd, (struct sockaddr *)&ss, len))
		return fail("connect", "%s: %s", addr_str(&ss, abuf, sizeof(abuf)),
			    strerror(errno));
	say("connect ok peer=%s", addr_str(&ss, abuf, sizeof(abuf)));

	/* ABI 5.3 steps 2-3: the server's remembered limits, then the 0-RTT request. */
	if (opt->resume) {
		sv.tp.remote = 1;
		if (setsockopt(c->fd, SOL_QUIC, QUIC_SOCKOPT_TRANSPORT_PARAM, &sv.tp,
			       sizeof(sv.tp)))
			return fail("resume", "setsockopt TRANSPORT_PARAM remote: %s",
				    strerror(errno));
		say("resume ok session=%zu bytes", sv.session_len);
	}
	if (opt->early_data) {
		__s64 sid = next_sid;

		if (send_stream(c->fd, sid, MSG_QUIC_STREAM_NEW | MSG_QUIC_STREAM_FIN, request,
				reqlen) < 0) {
			soft_fail = fail("early_data", "sendmsg before the handshake: %s",
					 strerror(errno));
		} else {
			next_sid += 4;
			early_queued = 1;
			say("early_data ok queued stream=%lld bytes=%zu", (long long)sid, reqlen);
		}
	}

	/* ABI 5.1 step 4 to 5.3 step 4: our parameters, then TLS (ClientHello, 0-RTT key). */
	optlen = sizeof(c->tp_local);
	if (getsockopt(c->fd, SOL_QUIC, QUIC_SOCKOPT_TRANSPORT_PARAM_EXT, c->tp_local, &optlen))
		return fail("handshake", "getsockopt TRANSPORT_PARAM_EXT: %s", strerror(errno));
	c->tp_local_len = optlen;
	if (tls_setup(c, sv.session, sv.session_len))
		return fail("handshake", "%s", c->why);
	if (opt->early_data && gnutls_record_get_max_early_data_size(c->tls) != 0xffffffffu)
		soft_fail = fail("early_data", "the ticket allows %zu bytes of 0-RTT, not %u",
				 gnutls_record_get_max_early_data_size(c->tls), 0xffffffffu);
	if (tls_drive(c) || wait_for(c, is_complete, NULL, TIMEOUT_MS, "handshake"))
		return fail("handshake", "%s", c->why);
	{
		gnutls_datum_t proto = { 0 };
		unsigned int flags = gnutls_session_get_flags(c->tls);

		if (!c->peer_tp)
			return fail("handshake", "the server sent no transport parameters");
		if (gnutls_alpn_get_selected_protocol(c->tls, &proto) < 0)
			return fail("handshake", "no ALPN negotiated");
		say("handshake ok alpn=%.*s cipher=%u resumed=%d early_data=%d", (int)proto.size,
		    proto.data, cipher_type(gnutls_cipher_get(c->tls)),
		    gnutls_session_is_resumed(c->tls), !!(flags & GNUTLS_SFLAGS_EARLY_DATA));
		if (opt->resume && !gnutls_session_is_resumed(c->tls))
			return fail("resume", "the server did not resume the session");
		/* Rejected 0-RTT: the kernel resends the request in 1-RTT packets. */
		if (opt->early_data && !(flags & GNUTLS_SFLAGS_EARLY_DATA))
			soft_fail = fail("early_data", "the server did not accept early data");
	}

	/* With --early-data that could not be queued the request goes after the handshake. */
	if (early_queued ? client_answer(c, "early_echo", 0, (__u8 *)request, reqlen) :
			   client_request(c, "echo", (__u8 *)request, reqlen))
		return -1;
	if (opt->session && client_save(c))
		return -1;
	if (opt->migrate && (client_migrate(c) ||
			     client_request(c, "echo_after_migration", (__u8 *)request,
					    reqlen)))
		return -1;
	say("done");
	close(c->fd);
	return soft_fail;
}

/* -- main ------------------------------------------------------------------------------ */

static int print_usage(void)
{
	fprintf(stderr,
		"usage: quic_upstream server ADDR PORT [--cert F] [--key F] [--alpn A]\n"
		"       quic_upstream client ADDR PORT [--cafile F] [--server-name N] [--alpn A]\n"
		"                     [--request TEXT | --get PATH] [--session FILE]\n"
		"                     [--resume FILE [--early-data]] [--migrate ADDR[:PORT] [--sync]]\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct opts o = { .cert = "keys/cert.crt", .key = "keys/pkey.key",
			  .cafile = "keys/ca.crt", .server_name = "server.quic.test",
			  .alpn = "quic-upstream",
			  .request = "hello from an upstream-API program" };
	int i, rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	if (argc < 4)
		return print_usage();
	o.mode = argv[1];
	o.addr = argv[2];
	o.port = argv[3];
	for (i = 4; i < argc; i++) {
		const char *a = argv[i];
		const char **val = NULL;

		if (!strcmp(a, "--early-data") || !strcmp(a, "--sync")) {
			*(a[2] == 'e' ? &o.early_data : &o.sync) = 1;
			continue;
		}
		if (!strcmp(a, "--cert"))
			val = &o.cert;
		else if (!strcmp(a, "--key"))
			val = &o.key;
		else if (!strcmp(a, "--cafile"))
			val = &o.cafile;
		else if (!strcmp(a, "--server-name"))
			val = &o.server_name;
		else if (!strcmp(a, "--alpn"))
			val = &o.alpn;
		else if (!strcmp(a, "--request"))
			val = &o.request;
		else if (!strcmp(a, "--get"))
			val = &o.get;
		else if (!strcmp(a, "--session"))
			val = &o.session;
		else if (!strcmp(a, "--resume"))
			val = &o.resume;
		else if (!strcmp(a, "--migrate"))
			val = &o.migrate;
		if (!val || i + 1 >= argc)
			return print_usage();
		*val = argv[++i];
	}
	if (strcmp(o.mode, "server") && strcmp(o.mode, "client"))
		return print_usage();
	if (o.early_data && !o.resume)
		return print_usage();
	opt = &o;
	if (gnutls_global_init() < 0 || gnutls_certificate_allocate_credentials(&cred) < 0)
		return fail("init", "gnutls");
	rc = strcmp(o.mode, "server") ? run_client() : run_server();
	return rc ? 1 : 0;
}
