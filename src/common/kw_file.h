/*
 * Reading a whole small file into memory (credentials, certificates), for programs that read
 * their files once, before they fork and drop privileges. The buffer comes from OPENSSL_malloc
 * so that secrets can be freed with OPENSSL_clear_free.
 */
#ifndef KW_FILE_H
#define KW_FILE_H

#include <stddef.h>
#include <stdint.h>

#define KW_FILE_MAX (1024u * 1024u) /* credential files larger than this are refused */

/*
 * Reads path (at most max bytes) into *buf (OPENSSL_malloc'd, NUL-terminated beyond *len; the
 * caller frees it, with OPENSSL_clear_free for secrets). what names the file for messages ("the
 * client key"). Returns 0, or KW_EIO with "cannot read WHAT PATH: REASON" (the errno string, or
 * "larger than N bytes") in err; partial data is cleansed.
 */
int kw_file_read(const char *path, const char *what, size_t max, uint8_t **buf, size_t *len,
                 char *err, size_t errlen);

#endif /* KW_FILE_H */
