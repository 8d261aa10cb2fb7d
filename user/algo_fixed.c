// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * fixed: Netflix FixedLimit / SettableLimit. The limit is whatever the
 * user set; samples change nothing. A live retune of `limit` takes effect
 * at once, as SettableLimit.setLimit() does.
 */
#include <stddef.h>

#include "algo.h"
#include "loadshed.h"

struct fixed_state {
	uint32_t limit;
};

static const struct ls_algo_param fixed_params[] = {
	{"limit", "initial_limit", LS_PARAM_UINT, offsetof(struct fixed_state, limit), "20", 1,
	 LS_MAX_LIMIT, 0, "the concurrency limit, never changed by samples"},
	{0},
};

static uint32_t fixed_start(void *st)
{
	return ((struct fixed_state *)st)->limit;
}

static uint32_t fixed_update(void *st, const struct ls_algo_sample *s)
{
	(void)s;
	return ((struct fixed_state *)st)->limit;
}

static uint32_t fixed_retune(void *st, uint32_t limit)
{
	(void)limit;
	return ((struct fixed_state *)st)->limit;
}

const struct ls_algo_ops ls_algo_fixed_ops = {
	.name = "fixed",
	.summary = "a constant limit (Netflix FixedLimit)",
	.state_size = sizeof(struct fixed_state),
	.params = fixed_params,
	.start = fixed_start,
	.update = fixed_update,
	.retune = fixed_retune,
};
