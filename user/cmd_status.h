/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The one reading of an attachment that status prints and top refreshes:
 * made under the attachment's lock, which is held only while it reads.
 */
#ifndef LS_CMD_STATUS_H
#define LS_CMD_STATUS_H

#include <stddef.h>
#include <json-c/json.h>

#include "loadshed.h"

/*
 * Reads ifname's attachment into *doc, the JSON document `status -j`
 * prints (the caller puts it). With hists (LS_NR_CLASS_SLOTS entries,
 * indexed by ls_class_index()), the latency histogram of every class in
 * the document is copied there too. Returns 0, or a negative errno with a
 * sentence naming the interface in err.
 */
int ls_status_read(const char *ifname, json_object **doc, struct ls_latency_hist *hists, char *err,
		   size_t errlen);

#endif /* LS_CMD_STATUS_H */
