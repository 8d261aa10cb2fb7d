// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/magic.h>

#include "log.h"
#include "loadshed.h"
#include "pins.h"

int ls_bpffs_ensure(void)
{
	struct statfs fs;

	if (!statfs(LS_BPFFS, &fs) && fs.f_type == BPF_FS_MAGIC)
		return 0;
	pr_debug("bpffs not mounted at %s: mounting it", LS_BPFFS);
	if (mkdir(LS_BPFFS, 0700) && errno != EEXIST)
		return -errno;
	if (mount("bpf", LS_BPFFS, "bpf", 0, "mode=0700"))
		return -errno;
	return 0;
}

bool ls_ifname_ok(const char *ifname)
{
	size_t n = strlen(ifname);

	return n && n < IF_NAMESIZE && !strchr(ifname, '/') && strcmp(ifname, ".") &&
	       strcmp(ifname, "..");
}

int ls_netns_cookie(uint64_t *cookie)
{
	socklen_t len = sizeof(*cookie);
	int fd, err = 0;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, cookie, &len))
		err = -errno;
	close(fd);
	return err;
}

int ls_pin_dir(const char *ifname, char *buf, size_t len)
{
	uint64_t ns;
	int err;

	if (!ls_ifname_ok(ifname))
		return -EINVAL;
	err = ls_netns_cookie(&ns);
	if (err)
		return err;
	if ((size_t)snprintf(buf, len, "%s/net%llu/%s", LS_PIN_ROOT, (unsigned long long)ns,
			     ifname) >= len)
		return -ENAMETOOLONG;
	return 0;
}

int ls_run_path(const char *ifname, const char *suffix, char *buf, size_t len)
{
	uint64_t ns;
	int err;

	if (!ls_ifname_ok(ifname))
		return -EINVAL;
	err = ls_netns_cookie(&ns);
	if (err)
		return err;
	if (mkdir(LS_RUN_ROOT, 0700) && errno != EEXIST)
		return -errno;
	if ((size_t)snprintf(buf, len, "%s/net%llu", LS_RUN_ROOT, (unsigned long long)ns) >= len)
		return -ENAMETOOLONG;
	if (mkdir(buf, 0700) && errno != EEXIST)
		return -errno;
	if ((size_t)snprintf(buf, len, "%s/net%llu/%s%s", LS_RUN_ROOT, (unsigned long long)ns,
			     ifname, suffix) >= len)
		return -ENAMETOOLONG;
	return 0;
}

/* The locked directory may have been removed by a detach we waited for. */
static bool still_there(int fd, const char *path)
{
	struct stat a, b;

	return !fstat(fd, &a) && !stat(path, &b) && a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

int ls_lock(const char *ifname, bool create)
{
	char dir[128];
	int fd, err;

	err = ls_pin_dir(ifname, dir, sizeof(dir));
	if (err)
		return err;
	err = ls_bpffs_ensure();
	if (err)
		return err;
	if (create) {
		char *slash = strrchr(dir, '/');

		if (mkdir(LS_PIN_ROOT, 0700) && errno != EEXIST)
			return -errno;
		*slash = 0; /* the namespace's directory */
		err = mkdir(dir, 0700) && errno != EEXIST ? -errno : 0;
		*slash = '/';
		if (err)
			return err;
		if (mkdir(dir, 0700) && errno != EEXIST)
			return -errno;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ENOENT : -errno;
	if (flock(fd, LOCK_EX)) {
		err = -errno;
		close(fd);
		return err;
	}
	if (!still_there(fd, dir)) {
		close(fd);
		return create ? -EAGAIN : -ENOENT;
	}
	return fd;
}

void ls_unlock(int *lock_fd)
{
	if (*lock_fd >= 0) {
		flock(*lock_fd, LOCK_UN);
		close(*lock_fd);
	}
	*lock_fd = -1;
}

static int cmp_listed(const void *a, const void *b)
{
	const struct ls_listed *x = a, *y = b;

	if (x->here != y->here)
		return x->here ? -1 : 1;
	if (x->netns != y->netns)
		return x->netns < y->netns ? -1 : 1;
	return strcmp(x->ifname, y->ifname);
}

int ls_list(struct ls_listed *out, int max)
{
	struct dirent *nd, *de;
	char path[256];
	uint64_t here = 0;
	DIR *root, *d;
	int n = 0;

	if (ls_bpffs_ensure())
		return 0;
	ls_netns_cookie(&here);
	root = opendir(LS_PIN_ROOT);
	if (!root)
		return 0;
	while ((nd = readdir(root)) && n < max) {
		unsigned long long ns;
		char tail;

		if (sscanf(nd->d_name, "net%llu%c", &ns, &tail) != 1)
			continue;
		snprintf(path, sizeof(path), "%s/net%llu", LS_PIN_ROOT, ns);
		d = opendir(path);
		while (d && (de = readdir(d)) && n < max) {
			if (!ls_ifname_ok(de->d_name) || de->d_name[0] == '.')
				continue;
			snprintf(out[n].ifname, IF_NAMESIZE, "%.15s", de->d_name);
			out[n].netns = ns;
			out[n].here = ns == here;
			n++;
		}
		if (d)
			closedir(d);
	}
	closedir(root);
	qsort(out, n, sizeof(*out), cmp_listed);
	return n;
}

int ls_attachment_open(const char *ifname, struct ls_attachment *a, char *err, size_t errlen)
{
	uint32_t version;
	int rc;

	a->lock = -1;
	rc = ls_pin_dir(ifname, a->dir, sizeof(a->dir));
	if (rc) {
		snprintf(err, errlen, "'%s' is not an interface name", ifname);
		return rc;
	}
	a->lock = ls_lock(ifname, false);
	if (a->lock < 0) {
		rc = a->lock;
		if (rc == -ENOENT)
			snprintf(err, errlen, "%s: not attached", ifname);
		else
			snprintf(err, errlen, "%s: %s", a->dir, strerror(-rc));
		a->lock = -1;
		return rc;
	}
	rc = ls_maps_open(a->dir, &a->maps, &version);
	if (rc == -EPROTO && version == LS_LAYOUT_VERSION)
		snprintf(err, errlen,
			 "%s: a pinned map is missing or not of the type or size layout %u has: "
			 "detach, then attach again",
			 ifname, version);
	else if (rc == -EPROTO)
		snprintf(err, errlen,
			 "%s: pinned by a loadshed of layout %u, this one reads layout %u: "
			 "detach, then attach again",
			 ifname, version, LS_LAYOUT_VERSION);
	else if (rc)
		snprintf(err, errlen, "%s: opening maps: %s", a->dir, strerror(-rc));
	if (rc)
		ls_unlock(&a->lock);
	return rc;
}

void ls_attachment_close(struct ls_attachment *a)
{
	ls_maps_close(&a->maps);
	ls_unlock(&a->lock);
}
