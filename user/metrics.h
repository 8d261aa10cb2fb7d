/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The agent's Prometheus endpoint ([agent] metrics = ADDR:PORT): GET
 * /metrics in the text exposition format, served by libmicrohttpd's own
 * thread. The control loop builds the exposition once per round into a
 * buffer it swaps in under a mutex; a scrape only copies the latest one
 * (and reads the heartbeat's age itself), so no number of scrapers can
 * hold up a round. Also the autoscaling signal (demand.h) of every
 * service. design.md §7.7.
 */
#ifndef LS_METRICS_H
#define LS_METRICS_H

#include <stdint.h>

#include "loadshed.h"
#include "maps.h"

struct ls_metrics;

/*
 * The endpoint's limits: concurrent connections, of them from one client
 * address (so that one client holding half-sent requests cannot lock the
 * scrapers out), and seconds a connection may idle.
 */
#define LS_METRICS_MAX_CONNECTIONS	  64
#define LS_METRICS_MAX_CONNECTIONS_PER_IP 8
#define LS_METRICS_TIMEOUT_S		  5
/* The HTTP server's messages logged a minute at most (clients cause most of them). */
#define LS_METRICS_LOG_PER_MIN 10
/* A listen address that could not be bound is tried again this often. */
#define LS_METRICS_RETRY_NS (10ull * 1000 * 1000 * 1000)

/*
 * The metrics of ifname, read from maps (and the tick program tick_fd, for
 * the dataplane's clock; the breaker's pins in dir). Nothing listens until a
 * round asks. 0 or -ENOMEM.
 */
int ls_metrics_new(const char *ifname, const char *dir, const struct ls_maps *maps, int tick_fd,
		   struct ls_metrics **out);

/* Stops the endpoint (waits for its thread) and frees; *m is NULLed. */
void ls_metrics_free(struct ls_metrics **m);

/*
 * One round, under the pin directory's lock, after the tick: listens on,
 * moves to or stops at am->metrics (a failure is logged, retried every
 * LS_METRICS_RETRY_NS, and the agent goes on), then reads every service,
 * updates its demand signal and publishes a new exposition. inflight is
 * the mmapped inflight map; flows the flow table's size at the last sweep.
 * Does nothing while metrics are off.
 */
void ls_metrics_round(struct ls_metrics *m, const struct ls_agent_meta *am,
		      const struct ls_inflight *inflight, uint64_t flows, uint64_t now_ns);

#endif
