// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * quic_canary: makes the debug kernel report on purpose, so that a debug pass
 * of the selftests can prove that its checks fire and that its kernel log scan
 * catches what they print (selftests/test_canary.py).
 *
 * Writing anything to a file of /sys/kernel/debug/quic_canary/ fires it:
 *
 *   kasan_oob_read  reads one byte past the end of a kmalloc()ed buffer:
 *                   KASAN reports a slab-out-of-bounds read.
 *   lockdep_abba    takes mutex A then B, releases both, then takes B then A,
 *                   from one thread: lockdep reports a possible circular
 *                   locking dependency.  Nothing deadlocks: the two orders
 *                   never overlap in time.
 *
 * Never load it outside a test: it exists to trip the kernel's checkers.
 */

#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/slab.h>

static struct dentry *quic_canary_dir;

static DEFINE_MUTEX(quic_canary_a);
static DEFINE_MUTEX(quic_canary_b);

/* One byte past the requested size of a kmalloc-128 object: inside the slab
 * object, so the read faults nothing, but in KASAN's redzone.
 */
static noinline char quic_canary_oob_read(void)
{
	size_t size = 123;
	char *buf;
	char c;

	buf = kmalloc(size, GFP_KERNEL);
	if (!buf)
		return 0;
	memset(buf, 0x51, size);
	/* Keep the compiler from seeing (and warning about) the bad index. */
	OPTIMIZER_HIDE_VAR(buf);
	OPTIMIZER_HIDE_VAR(size);
	c = READ_ONCE(buf[size]);
	kfree(buf);
	return c;
}

static noinline void quic_canary_abba(void)
{
	mutex_lock(&quic_canary_a);
	mutex_lock(&quic_canary_b);
	mutex_unlock(&quic_canary_b);
	mutex_unlock(&quic_canary_a);

	mutex_lock(&quic_canary_b);
	mutex_lock(&quic_canary_a);	/* B -> A after A -> B: lockdep reports */
	mutex_unlock(&quic_canary_a);
	mutex_unlock(&quic_canary_b);
}

static ssize_t quic_canary_kasan_write(struct file *file, const char __user *ubuf,
				       size_t len, loff_t *ppos)
{
	pr_info("quic_canary: out-of-bounds read: %d\n", quic_canary_oob_read());
	return len;
}

static ssize_t quic_canary_lockdep_write(struct file *file, const char __user *ubuf,
					 size_t len, loff_t *ppos)
{
	quic_canary_abba();
	pr_info("quic_canary: took A, B then B, A\n");
	return len;
}

static const struct file_operations quic_canary_kasan_fops = {
	.owner = THIS_MODULE,
	.write = quic_canary_kasan_write,
};

static const struct file_operations quic_canary_lockdep_fops = {
	.owner = THIS_MODULE,
	.write = quic_canary_lockdep_write,
};

static int __init quic_canary_init(void)
{
	quic_canary_dir = debugfs_create_dir("quic_canary", NULL);
	if (IS_ERR(quic_canary_dir))
		return PTR_ERR(quic_canary_dir);
	debugfs_create_file("kasan_oob_read", 0200, quic_canary_dir, NULL,
			    &quic_canary_kasan_fops);
	debugfs_create_file("lockdep_abba", 0200, quic_canary_dir, NULL,
			    &quic_canary_lockdep_fops);
	return 0;
}

static void __exit quic_canary_exit(void)
{
	debugfs_remove(quic_canary_dir);
}

module_init(quic_canary_init);
module_exit(quic_canary_exit);

MODULE_DESCRIPTION("Debug-pass canary: one KASAN and one lockdep report on demand");
MODULE_LICENSE("GPL");
