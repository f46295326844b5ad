/*
 * Fuzz target for the key stub decoder (src/common/stub.c), which parses files the provider
 * loads: any input must decode to a view inside the input or be refused, never read outside it.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "keyward/stub.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kw_stub_t stub;
    if (kw_stub_decode(data, size, &stub) == 0) {
        /* the SPKI view lies inside the input */
        if (stub.spki < data || stub.spki + stub.spki_len > data + size || stub.spki_len < 2)
            __builtin_trap();
        volatile uint8_t sink = 0;
        for (size_t i = 0; i < stub.spki_len; i++)
            sink ^= stub.spki[i];
        (void)sink;
    }
    return 0;
}
