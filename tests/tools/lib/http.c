// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
#include "http.h"
#include "net.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* How long one answer may take to write before the client counts as gone. */
#define HTTP_WRITE_MS 5000

/* Case-insensitive search for a token in a comma-separated header value. */
static bool header_has(const char *val, size_t len, const char *tok)
{
	size_t tl = strlen(tok);

	for (size_t i = 0; i + tl <= len; i++)
		if (!strncasecmp(val + i, tok, tl))
			return true;
	return false;
}

/* A header value v[0..len) (leading blanks skipped) as a whole number. 0 or -EINVAL. */
static int parse_length(const char *v, size_t len, uint64_t *out)
{
	char num[24];

	while (len && (v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	if (len >= sizeof(num))
		return -EINVAL;
	memcpy(num, v, len);
	num[len] = '\0';
	return parse_u64(num, 0, UINT64_MAX, out);
}

int http_parse_request(const char *buf, size_t head_len, struct http_req *r)
{
	const char *line_end = memmem(buf, head_len, "\r\n", 2);
	const char *sp1, *sp2, *p;
	size_t tl;

	if (!line_end)
		return -EINVAL;
	sp1 = memchr(buf, ' ', line_end - buf);
	if (!sp1)
		return -EINVAL;
	sp2 = memchr(sp1 + 1, ' ', line_end - sp1 - 1);
	if (!sp2)
		return -EINVAL;
	tl = sp2 - sp1 - 1;
	if (tl >= sizeof(r->target))
		tl = sizeof(r->target) - 1;
	memcpy(r->target, sp1 + 1, tl);
	r->target[tl] = '\0';
	r->keep_alive = (size_t)(line_end - sp2 - 1) == 8 && !strncmp(sp2 + 1, "HTTP/1.1", 8);
	r->content_length = 0;
	r->transfer_encoding = false;
	r->head_len = head_len;

	for (p = line_end + 2; p < buf + head_len - 2;) {
		const char *eol = memmem(p, buf + head_len - p, "\r\n", 2);
		const char *colon;

		if (!eol || eol == p)
			break;
		colon = memchr(p, ':', eol - p);
		if (colon) {
			const char *v = colon + 1;
			size_t nl = colon - p;

			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			if (nl == 10 && !strncasecmp(p, "connection", 10)) {
				if (header_has(v, eol - v, "close"))
					r->keep_alive = false;
				else if (header_has(v, eol - v, "keep-alive"))
					r->keep_alive = true;
			} else if (nl == 14 && !strncasecmp(p, "content-length", 14)) {
				if (parse_length(v, eol - v, &r->content_length))
					return -EINVAL;
			} else if (nl == 17 && !strncasecmp(p, "transfer-encoding", 17)) {
				r->transfer_encoding = true;
			}
		}
		p = eol + 2;
	}
	return 0;
}

const char *http_reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 431:
		return "Request Header Fields Too Large";
	case 503:
		return "Service Unavailable";
	default:
		return "Internal Server Error";
	}
}

int http_send_response(int fd, int status, const char *body, bool keep)
{
	char hdr[256];
	size_t blen = strlen(body);
	int n, err;

	n = snprintf(hdr, sizeof(hdr),
		     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
		     "Connection: %s\r\n\r\n",
		     status, http_reason(status), blen, keep ? "keep-alive" : "close");
	/* One write for the head and a small body: one packet, one first byte. */
	if (blen < sizeof(hdr) - (size_t)n) {
		memcpy(hdr + n, body, blen);
		return write_all(fd, hdr, n + blen, HTTP_WRITE_MS);
	}
	err = write_all(fd, hdr, n, HTTP_WRITE_MS);
	if (err)
		return err;
	return write_all(fd, body, blen, HTTP_WRITE_MS);
}
