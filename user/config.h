/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The policy config: agent settings, services, classes and their match
 * rules. Built either from an INI file (libinih) or by the CLI from its
 * options, through the same ls_config_set(); then checked whole by
 * ls_config_validate() before anything uses it. The format is described
 * at the top of config.c and in doc/loadshed.conf.example.
 *
 * Every function returns 0 or a negative errno and, on error, writes one
 * sentence into err: where (file:line, when there is one) and what is
 * wrong.
 */
#ifndef LS_CONFIG_H
#define LS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loadshed.h"
#include "addr.h"
#include "upstream.h"

/* Classes a user may configure per service, not counting bypass classes. */
#define LS_MAX_SHARED_CLASSES 16
/* A config file is refused past this size. */
#define LS_CONFIG_MAX_BYTES (1024 * 1024)
/* Keys a section type has, at most: a bit each in keys_seen. */
#define LS_CONF_MAX_KEYS 16

/* The agent's control-loop settings; defaults in ls_config_init(). */
struct ls_agent_conf {
	uint64_t interval_ns;
	uint64_t idle_timeout_ns;
	uint64_t stall_timeout_ns;  /* 0: never */
	uint64_t failopen_after_ns; /* 0: never fail open */
	uint32_t max_flows;
	uint32_t log_change_ppm;	/* log limit changes larger than this fraction */
	struct ls_metrics_addr metrics; /* port 0: no metrics endpoint */
	bool watch_config;		/* the agent reloads the config file when it changes */
	uint32_t keys_seen;		/* bit per key: each may be given once */
	int key_line[LS_CONF_MAX_KEYS];
};

struct ls_listen_conf {
	uint8_t addr[16]; /* IPv4-mapped for IPv4; all zero when any */
	bool any;
	uint16_t port;
	int line;
};

struct ls_rule_conf {
	struct ls_prefix src[LS_MAX_RULE_PREFIXES]; /* ORed */
	uint32_t nr_src;
	uint16_t port_lo; /* 0/0: any destination port */
	uint16_t port_hi;
	uint8_t dscp; /* LS_DSCP_ANY: any */
	uint8_t cls;  /* slot of the class it selects */
	int line;
};

struct ls_class_conf {
	char name[LS_NAME_LEN];
	uint32_t share_ppm;
	uint8_t action;	    /* enum ls_action */
	uint8_t req_action; /* enum ls_req_action */
	bool req_action_given;
	bool implicit;	  /* the "default" class validation added */
	bool share_given; /* a bypass class may not have one */
	uint32_t keys_seen;
	int key_line[LS_CONF_MAX_KEYS];
	int line;
};

struct ls_service_conf {
	char name[LS_NAME_LEN];
	struct ls_listen_conf listen[LS_MAX_LISTEN];
	uint32_t nr_listen;
	char algo[LS_NAME_LEN];
	char algo_params[LS_ALGO_PARAMS_LEN];
	uint32_t pinned_limit;	/* 0: auto, the algorithm sets L */
	uint32_t initial_limit; /* 0: the algorithm's default */
	uint32_t min_limit;	/* 0: the algorithm's default */
	uint32_t max_limit;	/* 0: the algorithm's default */
	bool shadow;
	uint8_t admit;		  /* enum ls_admit */
	uint32_t max_connections; /* 0: no cap */
	uint32_t max_defer_ms;	  /* 0: a deferred request never expires */
	bool max_defer_given;
	uint32_t rtt_quantile_ppm; /* 0: a window's RTT is the mean, else this quantile */
	char default_class_name[LS_NAME_LEN];	      /* "": none given */
	uint8_t default_class;			      /* slot, set by validation */
	struct ls_class_conf classes[LS_MAX_CLASSES]; /* slot = index, in file order */
	uint32_t nr_classes;
	struct ls_rule_conf rules[LS_MAX_RULES]; /* in file order: first match wins */
	uint32_t nr_rules;
	uint32_t keys_seen;
	int key_line[LS_CONF_MAX_KEYS]; /* where each key was given, for errors */
	int line;
};

struct ls_config {
	char source[256]; /* file name in errors; "" for the command line */
	struct ls_agent_conf agent;
	struct ls_service_conf svc[LS_MAX_SERVICES]; /* index = service number */
	uint32_t nr_services;
	struct ls_upstreams upstreams; /* [upstream NAME]: the outbound circuit breakers */
	bool validated;		       /* set by ls_config_validate(); no changes after */
};

/* Every default, in one place. */
void ls_config_init(struct ls_config *c);

/* A zeroed, ls_config_init()ed config on the heap; 0 or -ENOMEM. */
int ls_config_new(struct ls_config **out);
void ls_config_free(struct ls_config **c);

/*
 * Sets one key of one section, exactly as the file would: section is
 * "agent", "service NAME", "class SERVICE.CLASS" or "upstream NAME"
 * (upstream.h); a class's service must
 * exist already. line is the file line for errors (0: none). `listen` and
 * `match` add on each call; any other key given twice is an error.
 * A call that fails changes nothing.
 */
int ls_config_set(struct ls_config *c, const char *section, const char *key, const char *value,
		  int line, char *err, size_t errlen);

/*
 * Adds a class to a service from the CLI's one-line form
 *   NAME=SHARE[,ACTION][,src=P[+P...]][,dport=N[-M]][,dscp=N]
 * (SHARE may be left out when ACTION is first: `health=bypass`). The
 * conditions, if any, form one match rule.
 */
int ls_config_add_class_spec(struct ls_config *c, const char *service, const char *spec, char *err,
			     size_t errlen);

/*
 * Checks the config as a whole (see config.c for the list) and completes
 * it: the implicit default class, each service's default slot. After
 * success the config is frozen: ls_config_set() refuses to change it.
 */
int ls_config_validate(struct ls_config *c, char *err, size_t errlen);

/* Parses and validates a file; *out is set only on success. */
int ls_config_load_file(const char *path, struct ls_config **out, char *err, size_t errlen);

/* The same from text in memory; source names it in errors (may be NULL). */
int ls_config_load_string(const char *text, const char *source, struct ls_config **out, char *err,
			  size_t errlen);

/* Parses into an existing config without validating (to combine with options). */
int ls_config_parse_file(struct ls_config *c, const char *path, char *err, size_t errlen);
int ls_config_parse_string(struct ls_config *c, const char *text, char *err, size_t errlen);

/* Lookups by name; NULL or -1 when absent. */
struct ls_service_conf *ls_config_service(struct ls_config *c, const char *name);
int ls_service_class_slot(const struct ls_service_conf *s, const char *name);

const char *ls_action_name(uint8_t action);
const char *ls_request_action_name(uint8_t action);
const char *ls_admit_name(uint8_t admit);

#endif /* LS_CONFIG_H */
