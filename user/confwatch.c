// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * A config file followed by its content.
 *
 * The path is kept as the user gave it and resolved afresh at every read:
 * a Kubernetes ConfigMap mounts /etc/cfg/x.conf -> ..data/x.conf and
 * ..data -> ..2026_12_01_xx; an update writes a new timestamped directory,
 * renames a new ..data symlink over the old one and deletes the old
 * directory. The file's own inode never changes, so watching it would see
 * nothing: inotify watches the directory of the path as given (the rename
 * of ..data lands there as IN_MOVED_TO) and the directory the path resolves
 * to now (an edit in place behind a symlink lands there), re-resolved at
 * every read. An event says only "look": the file is read, its content
 * hashed, and a change is a different hash — an event for another file, a
 * touch, or a rewrite with the same bytes reloads nothing. A periodic read
 * covers what inotify cannot see (a directory that did not exist yet, an
 * overflowed queue).
 *
 * A writer may not be done when its events stop: one that rewrites the file
 * in place can pause between two writes for longer than a round, and the
 * text so far may well validate. So a content is taken only when (a) no
 * writer has the file open for writing as far as the events tell (an
 * IN_MODIFY of its name with no IN_CLOSE_WRITE after it), unless the
 * periodic read is due, and (b) two reads a call apart found the same
 * bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "confwatch.h"
#include "log.h"

/* A file larger than this is one content ("too large"), whatever it holds. */
#define MAX_READ_BYTES (16u << 20)

#define WATCH_MASK                                                                                 \
	(IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_CLOSE_WRITE | IN_MODIFY | IN_DELETE |        \
	 IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF)

struct ls_confwatch {
	char path[PATH_MAX];
	char real_dir[PATH_MAX];      /* the directory the path resolved to at the last read */
	int fd;			      /* inotify, non-blocking */
	int wd_dir;		      /* the directory of the path as given; -1: none */
	int wd_real;		      /* real_dir, when it is another one; -1: none */
	char base[NAME_MAX + 1];      /* the file's name in the directory as given */
	char real_base[NAME_MAX + 1]; /* and in real_dir */
	uint64_t hash;		      /* of the content seen: FNV-1a over the bytes and the size */
	uint64_t candidate;	      /* a new content read once, taken if read again */
	uint64_t next_read_ns;
	bool dirty;   /* an event came: read once the directories are quiet */
	bool writing; /* the file was modified and not closed since */
	bool pending; /* candidate holds a content to read again */
};

/* FNV-1a, 64 bits: the content's identity for "did it change". */
static uint64_t fnv1a(uint64_t h, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

/*
 * The hash of what path holds now. A file that cannot be opened hashes as
 * its errno, so that its going away and its coming back are changes too.
 */
static uint64_t content_hash(const char *path)
{
	unsigned char buf[65536];
	uint64_t h = 0xcbf29ce484222325ull, size = 0;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return (uint64_t)errno;
	while ((n = read(fd, buf, sizeof(buf))) > 0 && size <= MAX_READ_BYTES) {
		h = fnv1a(h, buf, (size_t)n);
		size += (uint64_t)n;
	}
	close(fd);
	if (n < 0)
		return (uint64_t)EIO;
	return fnv1a(h, (const unsigned char *)&size, sizeof(size));
}

static int add_watch(struct ls_confwatch *w, const char *dir)
{
	if (w->fd < 0)
		return -1;
	return inotify_add_watch(w->fd, dir, WATCH_MASK | IN_ONLYDIR);
}

/* dirname() of a copy of path into out. */
static void dir_of(const char *path, char *out, size_t len)
{
	char tmp[PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s", path);
	snprintf(out, len, "%s", dirname(tmp));
}

/* basename() of a copy of path into out. */
static void base_of(const char *path, char *out, size_t len)
{
	char tmp[PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s", path);
	snprintf(out, len, "%s", basename(tmp));
}

/*
 * Watches the directory of the path as given and the one it resolves to
 * now: both are watched again if they went (a deleted ..2026_… directory,
 * a directory that did not exist at the last call).
 */
static void watch_dirs(struct ls_confwatch *w)
{
	char real[PATH_MAX], dir[PATH_MAX];

	if (w->wd_dir < 0) {
		dir_of(w->path, dir, sizeof(dir));
		w->wd_dir = add_watch(w, dir);
	}
	if (realpath(w->path, real)) {
		dir_of(real, dir, sizeof(dir));
		base_of(real, w->real_base, sizeof(w->real_base));
	} else {
		dir[0] = 0;
	}
	if (!strcmp(dir, w->real_dir) && (w->wd_real >= 0 || !dir[0]))
		return;
	if (w->wd_real >= 0 && w->wd_real != w->wd_dir)
		inotify_rm_watch(w->fd, w->wd_real);
	w->wd_real = -1;
	snprintf(w->real_dir, sizeof(w->real_dir), "%s", dir);
	/* The same directory twice is one watch (inotify returns the same wd). */
	if (dir[0])
		w->wd_real = add_watch(w, dir);
}

/* Reads every queued event: whether there was any. Forgets watches the kernel dropped. */
static bool drain(struct ls_confwatch *w)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool any = false;
	ssize_t n;

	if (w->fd < 0)
		return false;
	while ((n = read(w->fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			if (ev->mask & IN_IGNORED) {
				if (ev->wd == w->wd_dir)
					w->wd_dir = -1;
				if (ev->wd == w->wd_real)
					w->wd_real = -1;
			}
			/* The file, by either name: is a writer in the middle of it? */
			if (ev->len &&
			    (!strcmp(ev->name, w->base) || !strcmp(ev->name, w->real_base))) {
				if (ev->mask & IN_MODIFY)
					w->writing = true;
				if (ev->mask &
				    (IN_CLOSE_WRITE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO))
					w->writing = false;
			}
			any = true;
			p += sizeof(*ev) + ev->len;
		}
	}
	return any;
}

int ls_confwatch_open(struct ls_confwatch **out, const char *path)
{
	struct ls_confwatch *w;

	if (path[0] != '/' || strlen(path) >= PATH_MAX)
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	/* Without inotify (fs.inotify.max_user_instances), the periodic read alone. */
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->fd < 0)
		pr_warn("%s: inotify: %s; read every %llu s instead", path, strerror(errno),
			LS_CONFWATCH_PERIOD_NS / 1000000000ull);
	snprintf(w->path, sizeof(w->path), "%s", path);
	base_of(w->path, w->base, sizeof(w->base));
	w->wd_dir = w->wd_real = -1;
	watch_dirs(w);
	w->hash = content_hash(w->path);
	*out = w;
	return 0;
}

const char *ls_confwatch_path(const struct ls_confwatch *w)
{
	return w->path;
}

int ls_confwatch_check(struct ls_confwatch *w, uint64_t now_ns)
{
	bool events = drain(w);
	uint64_t h;

	/*
	 * A writer may not be done: look at the next quiet call once it closed
	 * the file, unless the period is up.
	 */
	if (events)
		w->dirty = true;
	if (now_ns < w->next_read_ns && (events || w->writing || (!w->dirty && !w->pending)))
		return 0;
	w->dirty = false;
	w->next_read_ns = now_ns + LS_CONFWATCH_PERIOD_NS;
	watch_dirs(w);
	h = content_hash(w->path);
	if (h == w->hash) {
		w->pending = false;
		return 0;
	}
	/* New bytes: taken when the next read finds them again. */
	if (!w->pending || h != w->candidate) {
		w->pending = true;
		w->candidate = h;
		return 0;
	}
	w->pending = false;
	w->hash = h;
	return 1;
}

void ls_confwatch_close(struct ls_confwatch **w)
{
	if (!*w)
		return;
	if ((*w)->fd >= 0)
		close((*w)->fd);
	free(*w);
	*w = NULL;
}
