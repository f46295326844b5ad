/*
 * The caller's OpenSSL error queue, set aside while the client does I/O on the caller's thread:
 * SSL_get_error needs an empty queue, and the caller's errors (a handshake in progress) must come
 * back unchanged, none of ours added.
 */
#ifndef KWC_ERRQ_H
#define KWC_ERRQ_H

#include <stddef.h>

#define KWC_ERRQ_MAX 16

typedef struct kwc_errq_s {
    size_t n;
    struct {
        unsigned long code;
        char file[128]; /* copies: OpenSSL 3.0 frees its own at ERR_clear_error */
        char func[64];
        int line;
        int has_data;
        char data[256];
    } e[KWC_ERRQ_MAX];
} kwc_errq_t;

/* Moves the thread's errors into q (the queue is then empty). */
void kwc_errq_save(kwc_errq_t *q);
/* Clears the thread's queue and puts q's errors back. */
void kwc_errq_restore(const kwc_errq_t *q);

#endif /* KWC_ERRQ_H */
