// SPDX-License-Identifier: GPL-2.0
/*
 * The data path of `quicctl bench`: plain write()/read() loops on a connected socket that
 * Python handed over already handshaken (kernel QUIC, TCP, kTLS), so that what is measured is
 * the kernel, not the interpreter.
 *
 *   datapath send FD BYTES WSIZE     BYTES in WSIZE-byte write()s, then wait for a 1-byte ack
 *   datapath recv FD BYTES           read and verify BYTES, then send the 1-byte ack
 *   datapath rr-client FD COUNT SIZE COUNT round trips of SIZE bytes each way
 *   datapath rr-server FD COUNT SIZE echo COUNT requests of SIZE bytes
 *
 * The passive modes (recv, rr-server) print "ready" first, so the caller starts the active one
 * only once its peer reads.  The bytes follow a pattern of period 251 (a prime, so a chunk
 * that lands at the wrong offset does not match).  Each mode prints one JSON object on stdout;
 * exit 1 on any failure.
 * CPU time is read from /proc/stat (all CPUs: user+nice+system+irq+softirq) over the window.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PERIOD 251
#define MAX_IO (1 << 20)

static unsigned char pattern[PERIOD + MAX_IO];

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Busy CPU seconds of the whole machine so far. */
static double cpu_seconds(void)
{
	unsigned long long user, nice, sys, idle, iowait, irq, softirq;
	FILE *f = fopen("/proc/stat", "r");
	int n;

	if (!f)
		return 0;
	n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu", &user, &nice, &sys, &idle,
		   &iowait, &irq, &softirq);
	fclose(f);
	if (n != 7)
		return 0;
	return (double)(user + nice + sys + irq + softirq) / sysconf(_SC_CLK_TCK);
}

/* Verifies n bytes at stream offset off; on a mismatch, reports its exact offset and exits. */
static void verify(const unsigned char *buf, size_t n, unsigned long long off)
{
	size_t i;

	if (!memcmp(buf, pattern + off % PERIOD, n))
		return;
	for (i = 0; i < n && buf[i] == pattern[(off + i) % PERIOD]; i++)
		;
	printf("{\"ok\": false, \"error\": \"corrupt data at offset %llu\"}\n", off + i);
	exit(1);
}

static void fail(const char *what, unsigned long long done)
{
	printf("{\"ok\": false, \"error\": \"%s: %s\", \"bytes\": %llu}\n", what,
	       errno ? strerror(errno) : "peer closed", done);
	exit(1);
}

static void write_all(int fd, const unsigned char *buf, size_t len, unsigned long long done)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			fail("write", done);
		buf += n;
		len -= n;
		done += n;
	}
}

/* Reads exactly len bytes; verifies them against the pattern at stream offset off. */
static void read_verify(int fd, unsigned char *buf, size_t len, unsigned long long off)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = 0;
			fail("read", off + got);
		}
		verify(buf + got, n, off + got);
		got += n;
	}
}

static int do_send(int fd, unsigned long long total, size_t wsize)
{
	unsigned long long off = 0;
	double t0, c0, t1, c1;
	unsigned char ack;

	t0 = now();
	c0 = cpu_seconds();
	while (off < total) {
		size_t len = total - off < wsize ? total - off : wsize;
		ssize_t n = write(fd, pattern + off % PERIOD, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			fail("write", off);
		off += n;
	}
	errno = 0;
	if (read(fd, &ack, 1) != 1 || ack != 'K') {
		if (!errno)
			errno = EPROTO;
		fail("waiting for the receiver's ack", off);
	}
	t1 = now();
	c1 = cpu_seconds();
	printf("{\"ok\": true, \"bytes\": %llu, \"seconds\": %.6f, \"cpu_seconds\": %.3f}\n", off,
	       t1 - t0, c1 - c0);
	return 0;
}

static int do_recv(int fd, unsigned long long total)
{
	static unsigned char buf[MAX_IO];
	unsigned long long off = 0;
	double t0 = 0;

	while (off < total) {
		size_t want = total - off < MAX_IO ? total - off : MAX_IO;
		ssize_t n = read(fd, buf, want);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = 0;
			fail("read", off);
		}
		if (!off)
			t0 = now();
		verify(buf, n, off);
		off += n;
	}
	write_all(fd, (const unsigned char *)"K", 1, off);
	printf("{\"ok\": true, \"bytes\": %llu, \"seconds\": %.6f}\n", off, now() - t0);
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int do_rr_client(int fd, unsigned long count, size_t size)
{
	static unsigned char buf[MAX_IO];
	double *rtt = calloc(count, sizeof(*rtt));
	unsigned long long off = 0;
	unsigned long i;
	double sum = 0;

	if (!rtt)
		fail("calloc", 0);
	for (i = 0; i < count; i++) {
		double t = now();

		write_all(fd, pattern + off % PERIOD, size, off);
		read_verify(fd, buf, size, off);
		rtt[i] = now() - t;
		sum += rtt[i];
		off += size;
	}
	qsort(rtt, count, sizeof(*rtt), cmp_double);
	printf("{\"ok\": true, \"count\": %lu, \"median_us\": %.1f, \"mean_us\": %.1f, "
	       "\"p99_us\": %.1f}\n", count, rtt[count / 2] * 1e6, sum / count * 1e6,
	       rtt[count * 99 / 100] * 1e6);
	free(rtt);
	return 0;
}

static int do_rr_server(int fd, unsigned long count, size_t size)
{
	static unsigned char buf[MAX_IO];
	unsigned long long off = 0;
	unsigned long i;

	for (i = 0; i < count; i++) {
		read_verify(fd, buf, size, off);
		write_all(fd, buf, size, off);
		off += size;
	}
	printf("{\"ok\": true, \"count\": %lu}\n", count);
	return 0;
}

static unsigned long long number(const char *s, unsigned long long min, unsigned long long max)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max) {
		fprintf(stderr, "datapath: bad number %s\n", s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	int fd;
	size_t i;

	if (argc < 4) {
		fprintf(stderr, "usage: datapath send|recv|rr-client|rr-server FD ARGS...\n");
		return 2;
	}
	for (i = 0; i < sizeof(pattern); i++)
		pattern[i] = i % PERIOD;
	setvbuf(stdout, NULL, _IOLBF, 0);
	fd = number(argv[2], 0, 1 << 20);
	if (!strcmp(argv[1], "recv") || !strcmp(argv[1], "rr-server"))
		printf("ready\n");
	if (!strcmp(argv[1], "send") && argc == 5)
		return do_send(fd, number(argv[3], 1, ~0ULL), number(argv[4], 1, MAX_IO));
	if (!strcmp(argv[1], "recv") && argc == 4)
		return do_recv(fd, number(argv[3], 1, ~0ULL));
	if (!strcmp(argv[1], "rr-client") && argc == 5)
		return do_rr_client(fd, number(argv[3], 1, 1 << 24), number(argv[4], 1, MAX_IO));
	if (!strcmp(argv[1], "rr-server") && argc == 5)
		return do_rr_server(fd, number(argv[3], 1, 1 << 24), number(argv[4], 1, MAX_IO));
	fprintf(stderr, "datapath: bad arguments\n");
	return 2;
}
