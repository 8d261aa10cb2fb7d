// SPDX-License-Identifier: GPL-2.0-only
/* Defines the maps every loadshed program shares (see maps.h). */
#define LS_MAPS_DEFINE
#include "maps.h"

char LICENSE[] SEC("license") = "GPL";
