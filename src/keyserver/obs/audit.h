/*
 * The audit log (--audit-log FILE): one JSON line per key server operation (not for pings) with
 * the time, the edge (client certificate CN), the client IP and SNI the edge reported, the key id,
 * the operation, its result and its latency; and one line per part of a SIGHUP reload (what it
 * changed or why it failed, never a value). Never any payload.
 *
 * The loop thread formats a line and appends it to an in-memory buffer under a mutex; once per
 * loop iteration, before the iteration's replies are sent, kw_ks_audit_sync writes the buffer
 * with one write(2) (and fdatasync with --audit-fsync), so the line of an answered operation is
 * in the kernel before its answer leaves, and a SIGKILL loses none. A writer thread writes what
 * is left after a rotation and at close. A buffer that would overflow is written at once; a line
 * is dropped (counted, and warned about) only when that is impossible.
 */
#ifndef KW_KS_AUDIT_H
#define KW_KS_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "keyward/protocol.h"

#define KW_AUDIT_FLUSH_MS   500               /* the writer writes at least this often */
#define KW_AUDIT_BUFFER_MAX (4 * 1024 * 1024) /* bytes of lines waiting; beyond: dropped */
#define KW_AUDIT_SNI_MAX    255               /* longer SNI values are cut */
#define KW_AUDIT_LINE_MAX   4096

typedef struct kw_ks_audit_s kw_ks_audit_t;

/* What the audit line of one request needs, captured when the request is read (its frame is gone
 * by the time the answer is known). Plain data: copy freely. */
typedef struct kw_ks_audit_rec_s {
    uint64_t start_ns; /* monotonic clock at request read */
    int64_t wall_ms;   /* Unix time in ms at request read */
    uint8_t opcode;
    uint8_t has_key;
    uint8_t digest[KW_DIGEST_LEN]; /* the key's SHA-256 id, when has_key */
    uint8_t ip_len;                /* 0, 4 or 16 */
    uint8_t ip[16];
    uint8_t sni_len;
    char sni[KW_AUDIT_SNI_MAX];
} kw_ks_audit_rec_t;

/* Fills r from a decoded request: times, opcode, client IP (tag 0x03), SNI, and the digest item
 * as the key id when the request has one. */
void kw_ks_audit_rec_init(kw_ks_audit_rec_t *r, const kw_msg_t *msg);

/* Sets the key id (a key found by SKI or SNI). */
void kw_ks_audit_rec_key(kw_ks_audit_rec_t *r, const uint8_t digest[KW_DIGEST_LEN]);

/*
 * Opens (appends to, creating with mode 0640) path and starts the writer thread; with fsync, every
 * write is followed by fdatasync. Returns 0 and the log in *out, or KW_EIO / KW_ENOMEM with a
 * message in err.
 */
int kw_ks_audit_open(const char *path, int fsync, kw_ks_audit_t **out, char *err, size_t errlen);

/* Writes the lines logged so far to the file (one write(2), then fdatasync with fsync) before
 * returning. The server calls it once per loop iteration before it sends that iteration's replies.
 * Does nothing when nothing is buffered. a NULL: nothing. */
void kw_ks_audit_sync(kw_ks_audit_t *a);

/* Writes what is buffered, stops the writer thread, closes the file. NULL is ignored. */
void kw_ks_audit_close(kw_ks_audit_t *a);

/*
 * Queues the line of one finished request: edge is the client certificate's CN, result 0 (ok) or
 * the kw_remote_error_t answered. Writes only when the buffer is full (else kw_ks_audit_sync
 * does). Loop thread. a NULL: nothing.
 */
void kw_ks_audit_log(kw_ks_audit_t *a, const kw_ks_audit_rec_t *r, const char *edge,
                     uint8_t result);

/* Asks the writer to reopen the file before its next write (after log rotation). */
void kw_ks_audit_reopen(kw_ks_audit_t *a);

/* Lines dropped so far because the buffer was full. */
uint64_t kw_ks_audit_dropped(kw_ks_audit_t *a);

/* Formats the line (with '\n') into out; latency is now_ns - r->start_ns. Returns its length
 * (always < cap; strings are cut, never the JSON structure). cap must be at least 512. */
size_t kw_ks_audit_format(const kw_ks_audit_rec_t *r, const char *edge, uint8_t result,
                          uint64_t now_ns, char *out, size_t cap);

/*
 * Queues the line of one part of a SIGHUP reload, e.g.
 *   {"time":"...","event":"reload","part":"ticket_secret","result":"changed"}
 * part: "config", "keys", "allow_rules", "ticket_secret", "ticket_rotation"; result: "applied",
 * "changed", "unchanged" or "failed". Never a value (no key, no secret, nothing derived from one).
 * Written to the file before returning (one write). Loop thread. a NULL: nothing.
 */
void kw_ks_audit_reload(kw_ks_audit_t *a, const char *part, const char *result);

/* Formats a reload line (with '\n') into out, at wall time wall_ms; returns its length (< cap). */
size_t kw_ks_audit_format_reload(int64_t wall_ms, const char *part, const char *result, char *out,
                                 size_t cap);

/* The result word of an audit line: "ok", "denied" (0x40) or the remote error's name. */
const char *kw_ks_audit_result_name(uint8_t result);

#endif /* KW_KS_AUDIT_H */
