// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * loadshed top IFACE [-n COUNT] [-d DELAY]: status, refreshed. Every DELAY
 * seconds it reads the attachment as status does (ls_status_read, the lock
 * held only while reading, so the agent's rounds go on) and shows per
 * service and class the rates admitted and shed per second (counter deltas
 * over the measured interval), in-flight against the limit and the p50/p99
 * latency of the interval's samples (histogram deltas). Each frame walks
 * the flow table under the attachment's lock, so DELAY is at least 0.1 s:
 * a watcher cannot hold the lock most of the time.
 *
 * On a terminal it draws on the alternate screen, reads keys without echo
 * (q quits) and restores the terminal on every way out: q, Ctrl-C,
 * SIGTERM, SIGHUP, COUNT frames, an error. Otherwise (a pipe, a file) it
 * prints plain frames one after another, as `top -b`; with -j one JSON
 * object per frame.
 */
#define _GNU_SOURCE /* ppoll */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "cmd_status.h"
#include "commands.h"
#include "hist.h"
#include "output.h"

#define TOP_DELAY_DEFAULT_S 1.0
#define TOP_DELAY_MIN_S	    0.1
#define TOP_DELAY_MAX_S	    3600.0
#define TOP_COUNT_MAX	    1000000000UL

enum { OPT_COUNT = 1, OPT_DELAY };

static const struct ls_opt top_opts[] = {
	{"iterations", 'n', true, OPT_COUNT, "COUNT", "show COUNT frames, then exit"},
	{"delay", 'd', true, OPT_DELAY, "SECONDS",
	 "seconds between frames, fractions allowed (default 1)"},
	{NULL},
};

struct top_args {
	unsigned long count; /* 0: until q or a signal */
	double delay_s;
};

static int on_top_opt(void *ctx, int id, const char *v, char *err, size_t errlen)
{
	struct top_args *t = ctx;
	char *end;

	errno = 0;
	if (id == OPT_COUNT) {
		unsigned long n = v[0] >= '0' && v[0] <= '9' ? strtoul(v, &end, 10) : 0;

		if (!n || *end || errno || n > TOP_COUNT_MAX) {
			snprintf(err, errlen, "-n wants a count of frames from 1 to %lu, not '%s'",
				 TOP_COUNT_MAX, v);
			return -EINVAL;
		}
		t->count = n;
	} else {
		double d = (v[0] >= '0' && v[0] <= '9') || v[0] == '.' ? strtod(v, &end) : NAN;

		if (!isfinite(d) || *end || errno || d < TOP_DELAY_MIN_S || d > TOP_DELAY_MAX_S) {
			snprintf(err, errlen, "-d wants seconds from %g to %g, not '%s'",
				 TOP_DELAY_MIN_S, TOP_DELAY_MAX_S, v);
			return -EINVAL;
		}
		t->delay_s = d;
	}
	return 0;
}

/* One reading: the status document, every class's histogram, and when. */
struct reading {
	json_object *doc;
	struct ls_latency_hist *hists; /* LS_NR_CLASS_SLOTS */
	uint64_t at_ns;		       /* CLOCK_MONOTONIC */
};

static void reading_free(struct reading *r)
{
	json_object_put(r->doc);
	free(r->hists);
	r->doc = NULL;
	r->hists = NULL;
}

static int reading_take(const char *ifname, struct reading *r, char *err, size_t errlen)
{
	struct timespec ts;
	int rc;

	r->hists = calloc(LS_NR_CLASS_SLOTS, sizeof(*r->hists));
	if (!r->hists) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rc = ls_status_read(ifname, &r->doc, r->hists, err, errlen);
	if (rc) {
		free(r->hists);
		r->hists = NULL;
		return rc;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	r->at_ns = (uint64_t)ts.tv_sec * LS_NS_PER_S + (uint64_t)ts.tv_nsec;
	return 0;
}

static json_object *get(json_object *o, const char *k)
{
	json_object *v = NULL;

	json_object_object_get_ex(o, k, &v);
	return v;
}

static uint64_t get_u64(json_object *o, const char *k)
{
	return json_object_get_uint64(get(o, k));
}

static const char *get_str(json_object *o, const char *k)
{
	const char *s = json_object_get_string(get(o, k));

	return s ? s : "";
}

/* The same service (index and name) and class (slot and name) in an earlier reading. */
static json_object *find_class(json_object *doc, json_object *svc, json_object *cls)
{
	json_object *svcs = get(doc, "services");

	for (size_t i = 0; i < json_object_array_length(svcs); i++) {
		json_object *s = json_object_array_get_idx(svcs, i), *classes;

		if (get_u64(s, "index") != get_u64(svc, "index") ||
		    strcmp(get_str(s, "name"), get_str(svc, "name")))
			continue;
		classes = get(s, "classes");
		for (size_t j = 0; j < json_object_array_length(classes); j++) {
			json_object *c = json_object_array_get_idx(classes, j);

			if (get_u64(c, "slot") == get_u64(cls, "slot") &&
			    !strcmp(get_str(c, "name"), get_str(cls, "name")))
				return c;
		}
	}
	return NULL;
}

/*
 * What a class admits and sheds: connections, or under admit = requests
 * requests (shed by defer or abort).
 */
static uint64_t admitted_of(json_object *c, bool requests)
{
	return requests ? get_u64(c, "requests") : get_u64(c, "admitted");
}

static uint64_t shed_of(json_object *c, bool requests)
{
	return requests ? get_u64(c, "deferred") + get_u64(c, "aborted") : get_u64(c, "shed");
}

/* A counter's rate per second, or NULL when it went back (a new attachment). */
static json_object *rate(uint64_t now, uint64_t before, double interval_s)
{
	if (now < before || interval_s <= 0)
		return NULL;
	return json_object_new_double((double)(now - before) / interval_s);
}

/* The frame of cur against prev, as one JSON object (what -j prints). */
static json_object *frame_json(const struct reading *cur, const struct reading *prev,
			       unsigned long frame)
{
	double interval_s = (double)(cur->at_ns - prev->at_ns) / LS_NS_PER_S;
	json_object *o = json_object_new_object(), *svcs = json_object_new_array();
	json_object *in_svcs = get(cur->doc, "services");

	json_object_object_add(o, "ifname", json_object_new_string(get_str(cur->doc, "ifname")));
	json_object_object_add(o, "frame", json_object_new_uint64(frame));
	json_object_object_add(o, "time", json_object_new_int64((int64_t)time(NULL)));
	json_object_object_add(o, "interval_s", json_object_new_double(interval_s));
	json_object_object_add(o, "agent", json_object_get(get(cur->doc, "agent")));
	json_object_object_add(o, "flows", json_object_new_uint64(get_u64(cur->doc, "flows")));
	json_object_object_add(o, "max_flows",
			       json_object_new_uint64(get_u64(cur->doc, "max_flows")));
	for (size_t i = 0; i < json_object_array_length(in_svcs); i++) {
		json_object *s = json_object_array_get_idx(in_svcs, i),
			    *classes = get(s, "classes");
		json_object *so = json_object_new_object(), *co = json_object_new_array();
		bool requests = !strcmp(get_str(s, "admit"), "requests");

		json_object_object_add(so, "name", json_object_new_string(get_str(s, "name")));
		json_object_object_add(so, "admit", json_object_new_string(get_str(s, "admit")));
		json_object_object_add(so, "algorithm",
				       json_object_new_string(get_str(s, "algorithm")));
		json_object_object_add(so, "limit", json_object_new_uint64(get_u64(s, "limit")));
		json_object_object_add(so, "pinned", json_object_get(get(s, "pinned")));
		json_object_object_add(so, "shadow", json_object_get(get(s, "shadow")));
		json_object_object_add(so, "inflight", json_object_get(get(s, "inflight")));
		json_object_object_add(so, "connections", json_object_get(get(s, "connections")));
		for (size_t j = 0; j < json_object_array_length(classes); j++) {
			json_object *c = json_object_array_get_idx(classes, j);
			json_object *p = find_class(prev->doc, s, c),
				    *cj = json_object_new_object();
			uint32_t idx = ls_class_index((uint32_t)get_u64(s, "index"),
						      (uint32_t)get_u64(c, "slot"));
			struct ls_latency_hist d;

			json_object_object_add(cj, "name",
					       json_object_new_string(get_str(c, "name")));
			json_object_object_add(cj, "inflight", json_object_get(get(c, "inflight")));
			json_object_object_add(cj, "guarantee",
					       json_object_new_uint64(get_u64(c, "guarantee")));
			json_object_object_add(cj, "admitted",
					       json_object_new_uint64(admitted_of(c, requests)));
			json_object_object_add(cj, "shed",
					       json_object_new_uint64(shed_of(c, requests)));
			json_object_object_add(cj, "would_shed",
					       json_object_new_uint64(get_u64(c, "would_shed")));
			json_object_object_add(cj, "admitted_per_s",
					       p ? rate(admitted_of(c, requests),
							admitted_of(p, requests), interval_s)
						 : NULL);
			json_object_object_add(
				cj, "shed_per_s",
				p ? rate(shed_of(c, requests), shed_of(p, requests), interval_s)
				  : NULL);
			json_object_object_add(cj, "would_shed_per_s",
					       p ? rate(get_u64(c, "would_shed"),
							get_u64(p, "would_shed"), interval_s)
						 : NULL);
			/* The latency of this interval's samples, not of the attachment's life. */
			if (p && cur->hists[idx].count >= prev->hists[idx].count) {
				ls_hist_delta(&cur->hists[idx], &prev->hists[idx], &d);
			} else {
				memset(&d, 0, sizeof(d));
			}
			json_object_object_add(cj, "latency_samples",
					       json_object_new_uint64(d.count));
			json_object_object_add(
				cj, "p50_us",
				d.count ? json_object_new_uint64(ls_hist_quantile_ns(&d, 0.50) /
								 1000)
					: NULL);
			json_object_object_add(
				cj, "p99_us",
				d.count ? json_object_new_uint64(ls_hist_quantile_ns(&d, 0.99) /
								 1000)
					: NULL);
			json_object_array_add(co, cj);
		}
		json_object_object_add(so, "classes", co);
		json_object_array_add(svcs, so);
	}
	json_object_object_add(o, "services", svcs);
	return o;
}

/* --- text ------------------------------------------------------------------------ */

/* Where text goes: each line ends with "erase to the end of the line" on a terminal. */
struct screen {
	bool tty;
};

static void line(const struct screen *scr, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void line(const struct screen *scr, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputs(scr->tty ? "\033[K\n" : "\n", stdout);
}

/* A name from the maps, with anything that is not printable ASCII as '?'. */
static const char *printable(const char *s, char *buf, size_t len)
{
	size_t i;

	for (i = 0; s[i] && i + 1 < len; i++)
		buf[i] = s[i] > 0x20 && s[i] < 0x7f ? s[i] : '?';
	buf[i] = '\0';
	return buf;
}

static void print_rate(json_object *v, int width)
{
	if (v)
		printf(" %*.1f", width, json_object_get_double(v));
	else
		printf(" %*s", width, "-");
}

static void print_ms(json_object *v)
{
	if (v)
		printf(" %8.2f", (double)json_object_get_uint64(v) / 1000.0);
	else
		printf(" %8s", "-");
}

static void print_frame_text(const struct screen *scr, json_object *f, double delay_s)
{
	json_object *ag = get(f, "agent"), *svcs = get(f, "services");
	char when[32], name[LS_NAME_LEN + 1];
	time_t now = time(NULL);
	struct tm tm;

	strftime(when, sizeof(when), "%H:%M:%S", localtime_r(&now, &tm));
	if (scr->tty)
		fputs("\033[H", stdout);
	line(scr, "loadshed top %s - %s, every %g s, frame %llu%s",
	     printable(get_str(f, "ifname"), name, sizeof(name)), when, delay_s,
	     (unsigned long long)get_u64(f, "frame"), scr->tty ? " - q quits" : "");
	if (json_object_get_boolean(get(ag, "fail_open")))
		printf("FAIL-OPEN: admitting everything; ");
	if (get_u64(ag, "pid"))
		printf("agent pid %llu", (unsigned long long)get_u64(ag, "pid"));
	else
		printf("no agent");
	if (get(ag, "heartbeat_age_ms"))
		printf(", heartbeat %llu ms ago",
		       (unsigned long long)get_u64(ag, "heartbeat_age_ms"));
	line(scr, "; flows %llu of %llu", (unsigned long long)get_u64(f, "flows"),
	     (unsigned long long)get_u64(f, "max_flows"));
	for (size_t i = 0; i < json_object_array_length(svcs); i++) {
		json_object *s = json_object_array_get_idx(svcs, i), *classes = get(s, "classes");
		bool requests = !strcmp(get_str(s, "admit"), "requests");

		line(scr, "%s", "");
		line(scr,
		     "service %s: admits %s, in-flight %d of limit %llu (%s, %s), %d connections%s",
		     printable(get_str(s, "name"), name, sizeof(name)), get_str(s, "admit"),
		     json_object_get_int(get(s, "inflight")),
		     (unsigned long long)get_u64(s, "limit"),
		     json_object_get_boolean(get(s, "pinned")) ? "pinned" : "auto",
		     get_str(s, "algorithm"), json_object_get_int(get(s, "connections")),
		     json_object_get_boolean(get(s, "shadow")) ? ", SHADOW" : "");
		line(scr, "  %-16s %8s %5s %11s %11s %12s %8s %8s", "class", "inflight", "guar",
		     requests ? "requests/s" : "admitted/s", "shed/s", "would_shed/s", "p50_ms",
		     "p99_ms");
		for (size_t j = 0; j < json_object_array_length(classes); j++) {
			json_object *c = json_object_array_get_idx(classes, j);

			printf("  %-16s %8d %5llu",
			       printable(get_str(c, "name"), name, sizeof(name)),
			       json_object_get_int(get(c, "inflight")),
			       (unsigned long long)get_u64(c, "guarantee"));
			print_rate(get(c, "admitted_per_s"), 11);
			print_rate(get(c, "shed_per_s"), 11);
			print_rate(get(c, "would_shed_per_s"), 12);
			print_ms(get(c, "p50_us"));
			print_ms(get(c, "p99_us"));
			line(scr, "%s", "");
		}
	}
	if (scr->tty)
		fputs("\033[J", stdout); /* what an earlier, longer frame left below */
	else
		putchar('\n');
}

/* --- the terminal and signals ---------------------------------------------------- */

static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
	stop_signal = sig;
}

struct term {
	bool screen; /* the alternate screen is in use */
	bool raw;    /* stdin's settings were changed: saved holds them */
	struct termios saved;
};

#define ALT_SCREEN_ON  "\033[?1049h\033[?25l"
#define ALT_SCREEN_OFF "\033[?25h\033[?1049l"

static void term_enter(struct term *t)
{
	struct termios raw;

	if (isatty(STDIN_FILENO) && !tcgetattr(STDIN_FILENO, &t->saved)) {
		raw = t->saved;
		/* Keys one at a time, unechoed; ISIG stays, so Ctrl-C is SIGINT. */
		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		raw.c_cc[VMIN] = 1;
		raw.c_cc[VTIME] = 0;
		t->raw = !tcsetattr(STDIN_FILENO, TCSANOW, &raw);
	}
	fputs(ALT_SCREEN_ON, stdout);
	fflush(stdout);
	t->screen = true;
}

static void term_leave(struct term *t)
{
	if (t->screen) {
		fputs(ALT_SCREEN_OFF, stdout);
		fflush(stdout);
		t->screen = false;
	}
	if (t->raw) {
		tcsetattr(STDIN_FILENO, TCSANOW, &t->saved);
		t->raw = false;
	}
}

/*
 * Waits until deadline_ns (CLOCK_MONOTONIC), a stop signal or q on stdin
 * (when keys is set). The stop signals are blocked outside this wait, so
 * one that comes at any time ends it at once. Returns true to go on.
 */
static bool wait_until(uint64_t deadline_ns, bool *keys, const sigset_t *unblocked)
{
	for (;;) {
		struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
		struct timespec now, left;
		uint64_t now_ns;
		char buf[64];
		ssize_t n;
		int rc;

		if (stop_signal)
			return false;
		clock_gettime(CLOCK_MONOTONIC, &now);
		now_ns = (uint64_t)now.tv_sec * LS_NS_PER_S + (uint64_t)now.tv_nsec;
		if (now_ns >= deadline_ns)
			return true;
		left.tv_sec = (time_t)((deadline_ns - now_ns) / LS_NS_PER_S);
		left.tv_nsec = (long)((deadline_ns - now_ns) % LS_NS_PER_S);
		rc = ppoll(&pfd, *keys ? 1 : 0, &left, unblocked);
		if (rc < 0 && errno != EINTR)
			return false;
		if (rc <= 0)
			continue;
		n = read(STDIN_FILENO, buf, sizeof(buf));
		if (n <= 0) {
			*keys = false; /* end of input: only time and signals from now on */
			continue;
		}
		if (memchr(buf, 'q', (size_t)n) || memchr(buf, 'Q', (size_t)n))
			return false;
	}
}

static int run_top(const struct ls_call *call)
{
	struct top_args args = {.count = 0, .delay_s = TOP_DELAY_DEFAULT_S};
	static const int stops[] = {SIGINT, SIGTERM, SIGHUP};
	struct sigaction sa = {.sa_handler = on_stop_signal}, old_sa[3];
	struct reading prev = {}, cur = {};
	struct screen scr = {.tty = !ls_json && isatty(STDOUT_FILENO)};
	struct term term = {};
	sigset_t block, unblocked;
	unsigned long frame = 0;
	bool keys = scr.tty;
	char err[512];
	char *pos[1];
	int n, rc = LS_EXIT_OK;

	n = ls_opts_parse(call->argc, call->argv, top_opts, on_top_opt, &args, pos, 1, err,
			  sizeof(err));
	if (n < 0)
		return ls_fail(LS_EXIT_USAGE, "%s", err);
	if (n)
		return ls_fail(LS_EXIT_USAGE, "usage: loadshed top IFACE [-n COUNT] [-d SECONDS]");
	if (reading_take(call->ifname, &prev, err, sizeof(err)))
		return ls_fail(LS_EXIT_RUNTIME, "%s", err);

	/* No SA_RESTART: a stop signal ends the wait, and the loop. */
	sigemptyset(&block);
	for (size_t i = 0; i < 3; i++) {
		sigaddset(&block, stops[i]);
		sigaction(stops[i], &sa, &old_sa[i]);
	}
	sigprocmask(SIG_BLOCK, &block, &unblocked);
	if (scr.tty) {
		term_enter(&term);
		line(&scr, "loadshed top %s: measuring the first %g s ...", call->ifname,
		     args.delay_s);
		fflush(stdout);
	}
	while (!args.count || frame < args.count) {
		if (!wait_until(prev.at_ns + (uint64_t)(args.delay_s * LS_NS_PER_S), &keys,
				&unblocked))
			break;
		if (reading_take(call->ifname, &cur, err, sizeof(err))) {
			rc = LS_EXIT_RUNTIME;
			break;
		}
		frame++;
		{
			json_object *f = frame_json(&cur, &prev, frame);

			if (ls_json) {
				ls_json_print(f);
			} else {
				print_frame_text(&scr, f, args.delay_s);
				json_object_put(f);
			}
		}
		fflush(stdout);
		reading_free(&prev);
		prev = cur;
		cur = (struct reading){};
	}
	term_leave(&term);
	reading_free(&prev);
	sigprocmask(SIG_SETMASK, &unblocked, NULL);
	for (size_t i = 0; i < 3; i++)
		sigaction(stops[i], &old_sa[i], NULL);
	if (rc)
		return ls_fail(rc, "%s", err);
	/* q, Ctrl-C, SIGTERM or SIGHUP: the user asked it to stop. */
	return LS_EXIT_OK;
}

const struct ls_cmd ls_cmd_top = {
	.name = "top",
	.flags = LS_CMD_IFACE,
	.args = "[-n COUNT] [-d SECONDS]",
	.summary = "live view: rates admitted and shed, in-flight, latency, refreshed",
	.help = "Every SECONDS (default 1), per service and class: in-flight against the\n"
		"limit, admitted and shed per second (requests under admit = requests),\n"
		"would_shed per second (shadow mode), and the p50/p99 latency of the\n"
		"interval's samples. On a terminal it redraws one screen (q or Ctrl-C\n"
		"quits, the terminal is restored); otherwise it prints one frame after\n"
		"another, as top -b; with -j one JSON object per frame. The first frame\n"
		"comes after one interval: rates need two readings.\n",
	.opts = top_opts,
	.run = run_top,
};
