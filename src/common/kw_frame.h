/*
 * The frame reassembler both ends of a KWP connection use: bytes arrive in pieces into a buffer;
 * kw_frame_next hands out each complete frame in it (header and a view of the body), says how
 * many bytes the frame at the front still needs, and kw_frame_consume drops the frames handled,
 * cleansing the bytes they leave behind (replies and requests carry key material).
 */
#ifndef KW_FRAME_H
#define KW_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "keyward/protocol.h"
#include "kw_reader.h"

/*
 * The next frame in r: 1 with *h and *body (a view of h->body_len bytes) and r past the frame;
 * 0 when r holds only part of it (r does not move); KW_EVERSION when its major version is not
 * ours (*h holds the header as read; r does not move).
 */
KW_WARN_UNUSED int kw_frame_next(kw_reader_t *r, kw_header_t *h, const uint8_t **body);

/* How many bytes the frame at the start of buf[0..len) takes in all: KW_HEADER_LEN while its
 * header is incomplete, then the header and its body. */
size_t kw_frame_need(const uint8_t *buf, size_t len);

/* Drops the first n of *len bytes at buf, moves the rest to the front and cleanses the tail. */
void kw_frame_consume(uint8_t *buf, size_t *len, size_t n);

#endif /* KW_FRAME_H */
