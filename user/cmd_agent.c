// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * loadshed agent IFACE: the control loop in the foreground (for systemd,
 * or to restart a dead agent); and the spawning of it in the background
 * that attach does.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "commands.h"
#include "log.h"
#include "maps.h"
#include "output.h"
#include "pins.h"
#include "policy_maps.h"

#define LS_RUN_DIR "/run/loadshed"

int cmd_agent(int argc, char **argv)
{
	struct ls_agent_meta am = {};
	struct ls_attachment a;
	int rc, err;

	if (argc >= 2 && ls_is_help(argv[1])) {
		printf("Usage: loadshed [-v] agent IFACE\n\n"
		       "Runs the control loop of an attachment in the foreground: adapts the\n"
		       "limits from the measured latency, sweeps idle flows, keeps the\n"
		       "heartbeat. SIGTERM/SIGINT stop it; SIGHUP reloads the config file.\n"
		       "attach starts one in the background; run this to restart a dead one.\n");
		return LS_EXIT_OK;
	}
	if (argc != 2)
		return ls_fail(LS_EXIT_USAGE, "usage: loadshed agent IFACE");
	rc = ls_attachment_open(argv[1], &a);
	if (rc)
		return rc;
	ls_read_agent(&a.maps, &am);
	ls_attachment_close(&a);
	err = ls_agent_run(argv[1], ls_policy_reload_saved);
	if (err == -EEXIST)
		return ls_fail(LS_EXIT_RUNTIME, "%s: an agent already runs (pid %u)", argv[1],
			       am.agent_pid);
	if (err)
		return ls_fail(LS_EXIT_RUNTIME, "%s: agent: %s", argv[1], strerror(-err));
	return LS_EXIT_OK;
}

/* Waits (up to 3 s) until the agent has written its first heartbeat. */
static int wait_heartbeat(const char *ifname, pid_t pid)
{
	struct timespec tick = {.tv_nsec = 20 * 1000 * 1000};
	char dir[128];
	struct ls_maps m;

	if (ls_pin_dir(ifname, dir, sizeof(dir)) || ls_maps_open(dir, &m, NULL))
		return -ENOENT;
	for (int i = 0; i < 150; i++) {
		struct ls_state st = {};
		struct ls_agent_meta am = {};

		ls_read_state(&m, &st);
		ls_read_agent(&m, &am);
		if (am.agent_pid == (__u32)pid && st.heartbeat_ns) {
			ls_maps_close(&m);
			return 0;
		}
		if (kill(pid, 0))
			break;
		nanosleep(&tick, NULL);
	}
	ls_maps_close(&m);
	return -ETIMEDOUT;
}

int ls_agent_spawn(const char *ifname, const char *log_path)
{
	char path[128];
	pid_t pid;
	int fd;

	if (!log_path) {
		mkdir(LS_RUN_DIR, 0700);
		snprintf(path, sizeof(path), "%s/%s.log", LS_RUN_DIR, ifname);
		log_path = path;
	}
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		const char *verbose = ls_log_level >= LS_LOG_DEBUG  ? "-vv"
				      : ls_log_level >= LS_LOG_INFO ? "-v"
								    : NULL;

		setsid();
		fd = open("/dev/null", O_RDWR);
		if (fd >= 0) {
			dup2(fd, STDIN_FILENO);
			dup2(fd, STDOUT_FILENO);
			close(fd);
		}
		fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (fd >= 0) {
			dup2(fd, STDERR_FILENO);
			close(fd);
		}
		if (verbose)
			execl("/proc/self/exe", "loadshed", verbose, "agent", ifname, (char *)NULL);
		else
			execl("/proc/self/exe", "loadshed", "agent", ifname, (char *)NULL);
		_exit(127);
	}
	if (wait_heartbeat(ifname, pid)) {
		pr_err("%s: the agent did not start; see %s", ifname, log_path);
		return -ECHILD;
	}
	pr_info("%s: agent pid %d, log %s", ifname, (int)pid, log_path);
	return 0;
}
