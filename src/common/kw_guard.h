/*
 * Guard macros: make every check one line, so error paths are never skipped by accident.
 *   KW_GUARD(expr)          return expr's negative KW_E* code when it fails;
 *   KW_GUARD_AS(expr, err)  return err instead (e.g. a reader's KW_ESHORT becomes KW_EFORMAT);
 *   KW_ENSURE(cond, err)    return err when cond is false.
 * Only for functions that return 0 or a negative KW_E* code.
 */
#ifndef KW_GUARD_H
#define KW_GUARD_H

#include "keyward/error.h"

#define KW_WARN_UNUSED __attribute__((warn_unused_result))

#define KW_GUARD(expr)                                                                             \
    do {                                                                                           \
        int kw_guard_rc_ = (expr);                                                                 \
        if (kw_guard_rc_ < 0)                                                                      \
            return kw_guard_rc_;                                                                   \
    } while (0)

#define KW_GUARD_AS(expr, err)                                                                     \
    do {                                                                                           \
        if ((expr) < 0)                                                                            \
            return (err);                                                                          \
    } while (0)

#define KW_ENSURE(cond, err)                                                                       \
    do {                                                                                           \
        if (!(cond))                                                                               \
            return (err);                                                                          \
    } while (0)

#endif /* KW_GUARD_H */
