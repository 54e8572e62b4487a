// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * quic_sample: a kernel service over QUIC, the in-kernel twin of `quicctl
 * client` and `quicctl server` (hq-interop: "GET /path\r\n" on a client
 * bidirectional stream, the file as the answer on the same stream).
 *
 * Its sockets are created and owned here, as an SMB or NFS client's are; their
 * handshakes are up-called to the handshake agent (tlshd or `quicctl agent`)
 * through net/handshake.  Userspace drives it through the "quic_sample"
 * generic netlink family; each command blocks its caller (a signal ends it, with
 * EINTR: a command is never restarted) until it
 * is done:
 *
 *  - GET: connect to ADDR:PORT with ALPN, the agent verifies the server as
 *    PEERNAME (x509) or both sides prove they hold the pre-shared key whose
 *    key serial is PSK, fetch PATH; the reply holds the length and SHA-256 of
 *    what arrived.
 *  - SERVE: listen on ADDR:PORT with ALPN; for each of COUNT connections
 *    accept, let the agent do the server side (x509, or the PSK), read the
 *    request and send the file of that name under ROOT; the reply holds the
 *    connections served, the bytes sent and the connections that failed (a
 *    failed handshake or a client gone does not end the server).
 *
 * CERT and PRIVKEY, key serials of a certificate and its private key (PEM or
 * DER payloads), are our own x509 credentials for the agent to use, as an NFS
 * or SMB server names its own; without them the agent's configuration
 * decides.
 *
 * CANCEL (ms) makes either give up on a handshake that long after handing it
 * to the agent, with tls_handshake_cancel(), whatever the agent is doing.
 *
 * Errors come back as the netlink error with an extack message.
 */

#include <linux/module.h>
#include <linux/delay.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/inet.h>
#include <linux/net.h>
#include <linux/quic.h>
#include <linux/socket.h>
#include <crypto/sha2.h>
#include <net/genetlink.h>
#include <net/handshake.h>
#include <net/sock.h>

#define QUIC_SAMPLE_FAMILY	"quic_sample"
#define QUIC_SAMPLE_CHUNK	16384
#define QUIC_SAMPLE_REQ_MAX	1024
#define QUIC_SAMPLE_TIMEOUT	30000	/* ms, when the caller gives none */

enum {
	QUIC_SAMPLE_CMD_UNSPEC,
	QUIC_SAMPLE_CMD_GET,
	QUIC_SAMPLE_CMD_SERVE,
};

enum {
	QUIC_SAMPLE_A_UNSPEC,
	QUIC_SAMPLE_A_ADDR,		/* string: IPv4 or IPv6 literal */
	QUIC_SAMPLE_A_PORT,		/* u16 */
	QUIC_SAMPLE_A_ALPN,		/* string */
	QUIC_SAMPLE_A_PATH,		/* string: GET */
	QUIC_SAMPLE_A_PEERNAME,		/* string: GET, the name to verify */
	QUIC_SAMPLE_A_TIMEOUT,		/* u32 ms: handshake, and each wait */
	QUIC_SAMPLE_A_ROOT,		/* string: SERVE, directory served */
	QUIC_SAMPLE_A_COUNT,		/* u32: SERVE, connections to serve */
	QUIC_SAMPLE_A_BYTES,		/* u64 reply */
	QUIC_SAMPLE_A_SHA256,		/* binary reply: GET */
	QUIC_SAMPLE_A_SERVED,		/* u32 reply: SERVE */
	QUIC_SAMPLE_A_PAD,
	QUIC_SAMPLE_A_PSK,		/* u32: key serial of a PSK (description:
					 * identity, payload: key)
					 */
	QUIC_SAMPLE_A_CANCEL,		/* u32 ms: cancel the handshake then */
	QUIC_SAMPLE_A_FAILED,		/* u32 reply: SERVE */
	QUIC_SAMPLE_A_CERT,		/* u32: key serial of our certificate */
	QUIC_SAMPLE_A_PRIVKEY,		/* u32: key serial of its private key */
	__QUIC_SAMPLE_A_MAX,
};

#define QUIC_SAMPLE_A_MAX	(__QUIC_SAMPLE_A_MAX - 1)

static const struct nla_policy quic_sample_policy[QUIC_SAMPLE_A_MAX + 1] = {
	[QUIC_SAMPLE_A_ADDR]	 = { .type = NLA_NUL_STRING, .len = INET6_ADDRSTRLEN },
	[QUIC_SAMPLE_A_PORT]	 = { .type = NLA_U16 },
	[QUIC_SAMPLE_A_ALPN]	 = { .type = NLA_NUL_STRING, .len = 128 },
	[QUIC_SAMPLE_A_PATH]	 = { .type = NLA_NUL_STRING, .len = 512 },
	[QUIC_SAMPLE_A_PEERNAME] = { .type = NLA_NUL_STRING, .len = 255 },
	[QUIC_SAMPLE_A_TIMEOUT]	 = { .type = NLA_U32 },	/* clamped to 10 min */
	[QUIC_SAMPLE_A_ROOT]	 = { .type = NLA_NUL_STRING, .len = PATH_MAX - 1 },
	[QUIC_SAMPLE_A_COUNT]	 = NLA_POLICY_RANGE(NLA_U32, 1, 10000),
	[QUIC_SAMPLE_A_PSK]	 = NLA_POLICY_MIN(NLA_U32, 1),
	[QUIC_SAMPLE_A_CANCEL]	 = { .type = NLA_U32 },	/* clamped to 10 min */
	[QUIC_SAMPLE_A_CERT]	 = NLA_POLICY_MIN(NLA_U32, 1),
	[QUIC_SAMPLE_A_PRIVKEY]	 = NLA_POLICY_MIN(NLA_U32, 1),
};

/* One socket of ours with the file net/handshake needs to pass it on. */
struct quic_sample_sock {
	struct socket *sock;
	struct file *file;
};

static int quic_sample_file(struct quic_sample_sock *s, struct socket *sock,
			    u32 timeout)
{
	struct file *file;

	file = sock_alloc_file(sock, 0, NULL);	/* releases @sock on failure */
	if (IS_ERR(file))
		return PTR_ERR(file);
	s->sock = sock;
	s->file = file;
	sock->sk->sk_rcvtimeo = msecs_to_jiffies(timeout);
	sock->sk->sk_sndtimeo = msecs_to_jiffies(timeout);
	return 0;
}

static int quic_sample_socket(struct net *net, int family,
			      struct quic_sample_sock *s, const char *alpn,
			      u32 timeout)
{
	struct socket *sock;
	int err;

	err = sock_create_kern(net, family, SOCK_DGRAM, IPPROTO_QUIC, &sock);
	if (err)
		return err;
	err = quic_sample_file(s, sock, timeout);
	if (err)
		return err;
	return quic_do_setsockopt(s->sock->sk, QUIC_SOCKOPT_ALPN,
				  KERNEL_SOCKPTR((void *)alpn), strlen(alpn));
}

static void quic_sample_release(struct quic_sample_sock *s)
{
	if (s->file)
		fput(s->file);	/* the last reference: closes the socket */
	s->file = NULL;
	s->sock = NULL;
}

struct quic_sample_hs {
	struct completion done;
	int status;
};

static void quic_sample_hs_done(void *data, int status, key_serial_t peerid)
{
	struct quic_sample_hs *hs = data;

	hs->status = status;
	complete(&hs->done);
}

/* What a command asks of each handshake. */
struct quic_sample_auth {
	const char *peername;	/* GET: the name to verify */
	key_serial_t psk;	/* a PSK instead of x509 */
	key_serial_t cert;	/* our certificate and key, or TLS_NO_CERT */
	key_serial_t privkey;
	u32 timeout;		/* ms */
	u32 cancel;		/* ms, 0: none */
};

static int quic_sample_submit(struct tls_handshake_args *args, bool server,
			      const struct quic_sample_auth *auth)
{
	if (auth->psk) {
		args->ta_num_peerids = 1;
		args->ta_my_peerids[0] = auth->psk;
		return server ? tls_server_hello_psk(args, GFP_KERNEL) :
				tls_client_hello_psk(args, GFP_KERNEL);
	}
	return server ? tls_server_hello_x509(args, GFP_KERNEL) :
			tls_client_hello_x509(args, GFP_KERNEL);
}

/*
 * The up-call: hand the socket to the agent and wait for its verdict.  A
 * request the agent never takes (none running) or never finishes is
 * cancelled at the timeout.  net/handshake refuses a request with -EAGAIN
 * while as many as it allows (a few per GB of memory) wait for the agent to
 * take them: that is back-pressure, not a failure, so submitting is tried
 * again until the timeout, as a service that opens many connections at once
 * must.
 */
static int quic_sample_handshake(struct quic_sample_sock *s, bool server,
				 const struct quic_sample_auth *auth)
{
	unsigned long until = jiffies + msecs_to_jiffies(auth->timeout);
	struct tls_handshake_args args = {
		.ta_sock = s->sock,
		.ta_done = quic_sample_hs_done,
		.ta_peername = auth->peername,
		.ta_timeout_ms = auth->timeout,
		.ta_keyring = TLS_NO_KEYRING,
		.ta_my_cert = auth->cert,
		.ta_my_privkey = auth->privkey,
	};
	struct quic_sample_hs hs;
	long left;
	int err;

	init_completion(&hs.done);
	args.ta_data = &hs;
	while ((err = quic_sample_submit(&args, server, auth)) == -EAGAIN) {
		if (time_after(jiffies, until))
			return err;
		if (msleep_interruptible(50))
			return -EINTR;
	}
	if (err)
		return err;
	left = msecs_to_jiffies(auth->cancel ?: auth->timeout);
	left = wait_for_completion_interruptible_timeout(&hs.done, left);
	if (left > 0)
		return hs.status;
	if (!tls_handshake_cancel(s->sock->sk)) {
		wait_for_completion(&hs.done);	/* done is running: let it */
		return hs.status;
	}
	if (left)
		return (int)left;	/* a signal */
	return auth->cancel ? -ECANCELED : -ETIMEDOUT;
}

static void quic_sample_hs_error(struct genl_info *info, int err)
{
	if (err == -ESRCH)	/* net/handshake: nobody in the tlshd group */
		NL_SET_ERR_MSG(info->extack,
			       "no handshake agent listens in this network namespace");
	else if (err == -ETIMEDOUT)
		NL_SET_ERR_MSG(info->extack,
			       "the handshake agent did not finish in time");
	else if (err == -ERESTARTSYS || err == -EINTR)
		NL_SET_ERR_MSG(info->extack,
			       "interrupted during the handshake");
	else if (err == -ECANCELED)
		NL_SET_ERR_MSG(info->extack,
			       "the handshake was cancelled (tls_handshake_cancel)");
	else if (err == -EAGAIN)
		NL_SET_ERR_MSG(info->extack,
			       "too many handshakes waited for the agent until the timeout");
	else
		NL_SET_ERR_MSG(info->extack,
			       "the handshake failed (the agent's log says why)");
}

static int quic_sample_send(struct socket *sock, s64 sid, u32 flags,
			    void *data, size_t len)
{
	struct quic_stream_info info = { .stream_id = sid, .stream_flags = flags };
	u8 cbuf[CMSG_SPACE(sizeof(info))] __aligned(sizeof(long)) = {};
	struct msghdr msg = { .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cmsg = (struct cmsghdr *)cbuf;
	struct kvec iov = { .iov_base = data, .iov_len = len };

	cmsg->cmsg_level = SOL_QUIC;
	cmsg->cmsg_type = QUIC_STREAM_INFO;
	cmsg->cmsg_len = CMSG_LEN(sizeof(info));
	memcpy(CMSG_DATA(cmsg), &info, sizeof(info));
	return kernel_sendmsg(sock, &msg, &iov, 1, len);
}

/*
 * Stream data into @buf: its length, with @sid and @fin set from the
 * stream cmsg; events (MSG_QUIC_NOTIFICATION) are skipped.  0 with @fin
 * clear means the connection ended.
 */
static int quic_sample_recv(struct socket *sock, void *buf, size_t size,
			    s64 *sid, bool *fin)
{
	u8 cbuf[CMSG_SPACE(sizeof(struct quic_stream_info))] __aligned(sizeof(long));
	struct quic_stream_info info;
	struct cmsghdr *cmsg;
	struct msghdr msg;
	struct kvec iov;
	int len;

	for (;;) {
		memset(&msg, 0, sizeof(msg));
		msg.msg_control = cbuf;
		msg.msg_controllen = sizeof(cbuf);
		iov.iov_base = buf;
		iov.iov_len = size;
		len = kernel_recvmsg(sock, &msg, &iov, 1, size, 0);
		if (len < 0)
			return len;
		if (msg.msg_flags & MSG_QUIC_NOTIFICATION)
			continue;
		*fin = false;
		cmsg = (struct cmsghdr *)cbuf;
		if (sizeof(cbuf) - msg.msg_controllen >= CMSG_LEN(sizeof(info)) &&
		    cmsg->cmsg_level == SOL_QUIC &&
		    cmsg->cmsg_type == QUIC_STREAM_INFO) {
			memcpy(&info, CMSG_DATA(cmsg), sizeof(info));
			*sid = info.stream_id;
			*fin = info.stream_flags & MSG_QUIC_STREAM_FIN;
		}
		return len;
	}
}

static int quic_sample_addr(const struct nlattr *a, u16 port,
			    struct sockaddr_storage *ss, int *len)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	const char *s = nla_data(a);

	memset(ss, 0, sizeof(*ss));
	if (in4_pton(s, -1, (u8 *)&sin->sin_addr, -1, NULL)) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		*len = sizeof(*sin);
		return 0;
	}
	if (in6_pton(s, -1, sin6->sin6_addr.s6_addr, -1, NULL)) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		*len = sizeof(*sin6);
		return 0;
	}
	return -EINVAL;
}

static u32 quic_sample_timeout(struct genl_info *info)
{
	struct nlattr *a = info->attrs[QUIC_SAMPLE_A_TIMEOUT];

	return a ? clamp(nla_get_u32(a), 1U, 600000U) : QUIC_SAMPLE_TIMEOUT;
}

static u32 quic_sample_u32(struct genl_info *info, int attr, u32 min, u32 max)
{
	struct nlattr *a = info->attrs[attr];

	return a ? clamp(nla_get_u32(a), min, max) : 0;
}

static void quic_sample_auth(struct genl_info *info, struct quic_sample_auth *auth)
{
	struct nlattr *name = info->attrs[QUIC_SAMPLE_A_PEERNAME];

	auth->peername = name ? nla_data(name) : NULL;
	auth->psk = quic_sample_u32(info, QUIC_SAMPLE_A_PSK, 1, S32_MAX);
	auth->cert = quic_sample_u32(info, QUIC_SAMPLE_A_CERT, 1, S32_MAX);
	auth->privkey = quic_sample_u32(info, QUIC_SAMPLE_A_PRIVKEY, 1, S32_MAX);
	auth->timeout = quic_sample_timeout(info);
	auth->cancel = quic_sample_u32(info, QUIC_SAMPLE_A_CANCEL, 1, 600000);
}

static int quic_sample_get(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr **attrs = info->attrs;
	u8 digest[SHA256_DIGEST_SIZE];
	struct quic_sample_auth auth;
	struct quic_sample_sock s = {};
	struct sha256_state sha;
	struct sockaddr_storage ss;
	u32 timeout = quic_sample_timeout(info);
	u64 total = 0;
	struct sk_buff *reply;
	char req[QUIC_SAMPLE_REQ_MAX];
	int err, alen, n;
	bool fin = false;
	s64 sid = 0;
	void *hdr, *buf;

	if (GENL_REQ_ATTR_CHECK(info, QUIC_SAMPLE_A_ADDR) ||
	    GENL_REQ_ATTR_CHECK(info, QUIC_SAMPLE_A_PORT) ||
	    GENL_REQ_ATTR_CHECK(info, QUIC_SAMPLE_A_ALPN) ||
	    GENL_REQ_ATTR_CHECK(info, QUIC_SAMPLE_A_PATH))
		return -EINVAL;
	if (quic_sample_addr(attrs[QUIC_SAMPLE_A_ADDR],
			     nla_get_u16(attrs[QUIC_SAMPLE_A_PORT]), &ss, &alen)) {
		NL_SET_ERR_MSG_ATTR(info->extack, attrs[QUIC_SAMPLE_A_ADDR],
				    "not an IPv4 or IPv6 address");
		return -EINVAL;
	}
	n = snprintf(req, sizeof(req), "GET %s\r\n",
		     (char *)nla_data(attrs[QUIC_SAMPLE_A_PATH]));
	buf = kvmalloc(QUIC_SAMPLE_CHUNK, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	err = quic_sample_socket(genl_info_net(info), ss.ss_family, &s,
				 nla_data(attrs[QUIC_SAMPLE_A_ALPN]), timeout);
	if (err) {
		NL_SET_ERR_MSG(info->extack, "cannot create a QUIC socket");
		goto out;
	}
	err = kernel_connect(s.sock, (struct sockaddr *)&ss, alen, 0);
	if (err) {
		NL_SET_ERR_MSG(info->extack, "connect() failed");
		goto out;
	}
	quic_sample_auth(info, &auth);
	err = quic_sample_handshake(&s, false, &auth);
	if (err) {
		quic_sample_hs_error(info, err);
		goto out;
	}
	err = quic_sample_send(s.sock, 0, MSG_QUIC_STREAM_NEW | MSG_QUIC_STREAM_FIN,
			       req, n);
	if (err < 0) {
		NL_SET_ERR_MSG(info->extack, "sending the request failed");
		goto out;
	}
	sha256_init(&sha);
	while (!fin) {
		err = quic_sample_recv(s.sock, buf, QUIC_SAMPLE_CHUNK, &sid, &fin);
		if (err < 0 || (!err && !fin)) {
			NL_SET_ERR_MSG(info->extack,
				       "the connection ended before the file did");
			err = err < 0 ? err : -ECONNRESET;
			goto out;
		}
		if (sid != 0)
			continue;
		sha256_update(&sha, buf, err);
		total += err;
	}
	sha256_final(&sha, digest);

	err = -ENOMEM;
	reply = genlmsg_new(nla_total_size_64bit(8) + nla_total_size(sizeof(digest)),
			    GFP_KERNEL);
	if (!reply)
		goto out;
	hdr = genlmsg_put_reply(reply, info, info->family, 0, info->genlhdr->cmd);
	if (!hdr ||
	    nla_put_u64_64bit(reply, QUIC_SAMPLE_A_BYTES, total, QUIC_SAMPLE_A_PAD) ||
	    nla_put(reply, QUIC_SAMPLE_A_SHA256, sizeof(digest), digest)) {
		nlmsg_free(reply);
		goto out;
	}
	genlmsg_end(reply, hdr);
	err = genlmsg_reply(reply, info);
out:
	quic_sample_release(&s);
	kvfree(buf);
	return err == -ERESTARTSYS ? -EINTR : err;
}

/* The file named by an hq-interop request under @root, or an ERR_PTR. */
static struct file *quic_sample_open(const char *root, char *req, int len)
{
	char *path, *end, *full;
	struct file *f;

	if (len < 6 || memcmp(req, "GET /", 5))
		return ERR_PTR(-EINVAL);
	req[len] = '\0';
	path = req + 4;
	end = strpbrk(path, "\r\n ");
	if (end)
		*end = '\0';
	if (strstr(path, "/.") || strchr(path, '\\'))
		return ERR_PTR(-EACCES);	/* no dot files, no "..": stay under root */
	full = kasprintf(GFP_KERNEL, "%s%s", root, path);
	if (!full)
		return ERR_PTR(-ENOMEM);
	f = filp_open(full, O_RDONLY | O_NOFOLLOW, 0);
	kfree(full);
	if (!IS_ERR(f) && !S_ISREG(file_inode(f)->i_mode)) {
		fput(f);
		return ERR_PTR(-EISDIR);
	}
	return f;
}

/* One accepted connection: handshake, request, the file, then wait for the
 * client to close (its data acknowledged).  Return: bytes sent or an error.
 */
static s64 quic_sample_serve_one(struct quic_sample_sock *c, const char *root,
				 const struct quic_sample_auth *auth, void *buf)
{
	char req[QUIC_SAMPLE_REQ_MAX + 1];
	int err, len = 0, n;
	struct file *f;
	bool fin = false;
	s64 sid = 0, got = 0;
	loff_t pos = 0;
	s64 sent = 0;

	err = quic_sample_handshake(c, true, auth);
	if (err)
		return err;
	while (!fin) {
		n = quic_sample_recv(c->sock, req + len, QUIC_SAMPLE_REQ_MAX - len,
				     &got, &fin);
		if (n < 0)
			return n;
		if (!n && !fin)
			return -ECONNRESET;
		sid = got;
		len += n;
		if (len >= QUIC_SAMPLE_REQ_MAX && !fin)
			return -EMSGSIZE;
	}
	f = quic_sample_open(root, req, len);
	if (IS_ERR(f)) {	/* hq-interop has no status: an empty answer */
		err = quic_sample_send(c->sock, sid, MSG_QUIC_STREAM_FIN, NULL, 0);
		return err < 0 ? err : 0;
	}
	for (;;) {
		n = kernel_read(f, buf, QUIC_SAMPLE_CHUNK, &pos);
		if (n < 0) {
			err = n;
			break;
		}
		err = quic_sample_send(c->sock, sid, n ? 0 : MSG_QUIC_STREAM_FIN,
				       buf, n);
		if (err < 0 || !n)
			break;
		sent += n;
	}
	fput(f);
	if (err < 0)
		return err;
	/* Until the client closes: closing first could drop unacknowledged data. */
	while (quic_sample_recv(c->sock, buf, QUIC_SAMPLE_CHUNK, &got, &fin) > 0)
		;
	return sent;
}

static int quic_sample_serve(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr **attrs = info->attrs;
	struct quic_sample_sock l = {}, c = {};
	struct quic_sample_auth auth;
	u32 timeout = quic_sample_timeout(info);
	u32 count, served = 0, failed = 0;
	struct sockaddr_storage ss;
	struct socket *newsock;
	struct sk_buff *reply;
	u64 total = 0;
	int err, alen;
	void *hdr, *buf;
	s64 n;

	if (GENL_REQ_ATTR_CHECK(info, QUIC_SAMPLE_A_ADDR) ||
	    GENL_REQ_ATTR_CHECK(info, QUIC_SAMPLE_A_PORT) ||
	    GENL_REQ_ATTR_CHECK(info, QUIC_SAMPLE_A_ALPN) ||
	    GENL_REQ_ATTR_CHECK(info, QUIC_SAMPLE_A_ROOT))
		return -EINVAL;
	count = attrs[QUIC_SAMPLE_A_COUNT] ?
		nla_get_u32(attrs[QUIC_SAMPLE_A_COUNT]) : 1;
	if (quic_sample_addr(attrs[QUIC_SAMPLE_A_ADDR],
			     nla_get_u16(attrs[QUIC_SAMPLE_A_PORT]), &ss, &alen)) {
		NL_SET_ERR_MSG_ATTR(info->extack, attrs[QUIC_SAMPLE_A_ADDR],
				    "not an IPv4 or IPv6 address");
		return -EINVAL;
	}
	buf = kvmalloc(QUIC_SAMPLE_CHUNK, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	err = quic_sample_socket(genl_info_net(info), ss.ss_family, &l,
				 nla_data(attrs[QUIC_SAMPLE_A_ALPN]), timeout);
	if (err) {
		NL_SET_ERR_MSG(info->extack, "cannot create a QUIC socket");
		goto out;
	}
	err = kernel_bind(l.sock, (struct sockaddr *)&ss, alen);
	if (!err)
		err = kernel_listen(l.sock, count);
	if (err) {
		NL_SET_ERR_MSG(info->extack, "bind() or listen() failed");
		goto out;
	}
	quic_sample_auth(info, &auth);
	/* A server waits for its clients as long as it takes (a signal ends it). */
	l.sock->sk->sk_rcvtimeo = MAX_SCHEDULE_TIMEOUT;
	while (served < count) {
		err = kernel_accept(l.sock, &newsock, 0);
		if (err == -ERESTARTSYS || err == -EINTR) {
			NL_SET_ERR_MSG(info->extack,
				       "interrupted while waiting for a client");
			goto out;
		}
		if (err) {
			NL_SET_ERR_MSG(info->extack, "accept() failed");
			goto out;
		}
		err = quic_sample_file(&c, newsock, timeout);
		if (err)
			goto out;
		n = quic_sample_serve_one(&c, nla_data(attrs[QUIC_SAMPLE_A_ROOT]),
					  &auth, buf);
		quic_sample_release(&c);
		if (n == -ERESTARTSYS || n == -EINTR) {
			err = n;
			NL_SET_ERR_MSG(info->extack,
				       "interrupted while serving a client");
			goto out;
		}
		if (n < 0) {	/* that client's loss, not the server's */
			failed++;
			continue;
		}
		total += n;
		served++;
	}

	err = -ENOMEM;
	reply = genlmsg_new(nla_total_size_64bit(8) + 2 * nla_total_size(4),
			    GFP_KERNEL);
	if (!reply)
		goto out;
	hdr = genlmsg_put_reply(reply, info, info->family, 0, info->genlhdr->cmd);
	if (!hdr ||
	    nla_put_u64_64bit(reply, QUIC_SAMPLE_A_BYTES, total, QUIC_SAMPLE_A_PAD) ||
	    nla_put_u32(reply, QUIC_SAMPLE_A_SERVED, served) ||
	    nla_put_u32(reply, QUIC_SAMPLE_A_FAILED, failed)) {
		nlmsg_free(reply);
		goto out;
	}
	genlmsg_end(reply, hdr);
	err = genlmsg_reply(reply, info);
out:
	quic_sample_release(&l);
	kvfree(buf);
	return err == -ERESTARTSYS ? -EINTR : err;
}

static const struct genl_small_ops quic_sample_ops[] = {
	{
		.cmd = QUIC_SAMPLE_CMD_GET,
		.doit = quic_sample_get,
		.flags = GENL_ADMIN_PERM,
	},
	{
		.cmd = QUIC_SAMPLE_CMD_SERVE,
		.doit = quic_sample_serve,
		.flags = GENL_ADMIN_PERM,
	},
};

/* parallel_ops: a command waits for the agent, whose handshake family
 * commands must not queue behind it.
 */
static struct genl_family quic_sample_family __ro_after_init = {
	.name = QUIC_SAMPLE_FAMILY,
	.version = 1,
	.maxattr = QUIC_SAMPLE_A_MAX,
	.policy = quic_sample_policy,
	.netnsok = true,
	.parallel_ops = true,
	.module = THIS_MODULE,
	.small_ops = quic_sample_ops,
	.n_small_ops = ARRAY_SIZE(quic_sample_ops),
	.resv_start_op = QUIC_SAMPLE_CMD_SERVE + 1,
};

static int __init quic_sample_init(void)
{
	return genl_register_family(&quic_sample_family);
}

static void __exit quic_sample_exit(void)
{
	genl_unregister_family(&quic_sample_family);
}

module_init(quic_sample_init);
module_exit(quic_sample_exit);
MODULE_DESCRIPTION("QUIC sample kernel service (hq-interop client and server)");
MODULE_LICENSE("GPL");
MODULE_SOFTDEP("pre: quic");
