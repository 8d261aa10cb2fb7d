/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The server side of HTTP/1.1 as the test servers speak it: a request head
 * parsed into what they act on, and a plain-text answer in one write.
 */
#ifndef LS_TOOLS_HTTP_H
#define LS_TOOLS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_TARGET_MAX 512

struct http_req {
	char target[HTTP_TARGET_MAX]; /* a longer one is cut to fit */
	bool keep_alive;	      /* HTTP/1.1 by default, or as Connection: says */
	uint64_t content_length;      /* 0 without the header */
	bool transfer_encoding;	      /* a Transfer-Encoding header was sent */
	size_t head_len;	      /* up to and including the blank line */
};

/*
 * Parses the complete request head buf[0..head_len) (it ends with
 * "\r\n\r\n"). 0, or -EINVAL for a request line without a target and a
 * version, or a Content-Length that is not a whole number.
 */
int http_parse_request(const char *buf, size_t head_len, struct http_req *r);

/* The reason phrase of a status this code answers with. */
const char *http_reason(int status);

/*
 * Answers status with a text/plain body, in one write when it fits a packet;
 * "Connection: keep-alive" or "close" as keep says. 0 or -errno.
 */
int http_send_response(int fd, int status, const char *body, bool keep);

#endif
