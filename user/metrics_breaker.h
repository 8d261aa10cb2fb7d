/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The outbound circuit breakers' families on the metrics page (metrics_breaker.c). */
#ifndef LS_METRICS_BREAKER_H
#define LS_METRICS_BREAKER_H

/*
 * The loadshed_breaker_* families of the upstreams pinned in dir, labelled
 * iface=iface_label (escaped), as a malloc'd string; NULL without a
 * breaker (or when it cannot be read).
 */
char *ls_metrics_breaker(const char *dir, const char *iface_label);

#endif /* LS_METRICS_BREAKER_H */
