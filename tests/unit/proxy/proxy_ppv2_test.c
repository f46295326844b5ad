/*
 * PROXY protocol v2 encoder tests: a byte-exact IPv4 header with TLVs, IPv6 addresses, IPv4-mapped
 * IPv6 addresses (a dual-stack listener's IPv4 clients) sent as IPv4, mixed families sent as
 * AF_UNSPEC, and refusals (buffer too small, fields too long).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "keyward/error.h"
#include "proxy_ppv2.h"

static struct sockaddr_in v4(const char *ip, uint16_t port)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    assert_int_equal(inet_pton(AF_INET, ip, &a.sin_addr), 1);
    return a;
}

static struct sockaddr_in6 v6(const char *ip, uint16_t port)
{
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof(a));
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(port);
    assert_int_equal(inet_pton(AF_INET6, ip, &a.sin6_addr), 1);
    return a;
}

static void test_ipv4_exact_bytes(void **state)
{
    struct sockaddr_in src = v4("192.0.2.1", 50000);
    struct sockaddr_in dst = v4("198.51.100.2", 443);
    kw_ppv2_info_t info = {.src = (struct sockaddr *)&src,
                           .dst = (struct sockaddr *)&dst,
                           .alpn = (const uint8_t *)"h2",
                           .alpn_len = 2,
                           .authority = "a.example",
                           .tls_version = "TLSv1.3"};
    static const uint8_t want[] = {
        0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49,
        0x54, 0x0A,             /* signature */
        0x21, 0x11, 0x00, 0x2F, /* v2 PROXY, TCP4, 47 */
        192,  0,    2,    1,    198,  51,   100,  2,    0xC3, 0x50,
        0x01, 0xBB,                  /* addresses, ports */
        0x01, 0x00, 0x02, 'h',  '2', /* ALPN */
        0x02, 0x00, 0x09, 'a',  '.',  'e',  'x',  'a',  'm',  'p',
        'l',  'e',                                                 /* AUTHORITY */
        0x20, 0x00, 0x0F, 0x01, 0x00, 0x00, 0x00, 0x01,            /* SSL, client, verify */
        0x21, 0x00, 0x07, 'T',  'L',  'S',  'v',  '1',  '.',  '3', /* SSL_VERSION */
    };
    uint8_t out[KW_PPV2_MAX_LEN];
    size_t len = 0;
    assert_int_equal(kw_ppv2_encode(&info, out, sizeof(out), &len), 0);
    assert_int_equal(len, sizeof(want));
    assert_memory_equal(out, want, sizeof(want));
}

static void test_ipv6_and_cipher(void **state)
{
    struct sockaddr_in6 src = v6("2001:db8::1", 1234);
    struct sockaddr_in6 dst = v6("::1", 8443);
    kw_ppv2_info_t info = {.src = (struct sockaddr *)&src,
                           .dst = (struct sockaddr *)&dst,
                           .tls_version = "TLSv1.2",
                           .cipher = "ECDHE-RSA-AES128-GCM-SHA256"};
    uint8_t out[KW_PPV2_MAX_LEN];
    size_t len = 0;
    assert_int_equal(kw_ppv2_encode(&info, out, sizeof(out), &len), 0);
    assert_int_equal(out[13], 0x21);
    size_t body = (size_t)(out[14] << 8 | out[15]);
    assert_int_equal(len, 16 + body);
    assert_memory_equal(out + 16, &src.sin6_addr, 16);
    assert_memory_equal(out + 32, &dst.sin6_addr, 16);
    assert_int_equal(out[48] << 8 | out[49], 1234);
    assert_int_equal(out[50] << 8 | out[51], 8443);
    assert_int_equal(out[52], KW_PPV2_TYPE_SSL);
    /* client u8 + verify u32 + version TLV (3+7) + cipher TLV (3+27) */
    assert_int_equal(out[53] << 8 | out[54], 1 + 4 + 10 + 30);
    assert_int_equal(out[60], KW_PPV2_SUBTYPE_SSL_VERSION);
    assert_memory_equal(out + 63, "TLSv1.2", 7);
    assert_int_equal(out[70], KW_PPV2_SUBTYPE_SSL_CIPHER);
    assert_memory_equal(out + 73, "ECDHE-RSA-AES128-GCM-SHA256", 27);
    assert_int_equal(len, 16 + 36 + 3 + 45);
}

static void test_v4_mapped_as_ipv4(void **state)
{
    struct sockaddr_in6 src = v6("::ffff:192.0.2.1", 50000);
    struct sockaddr_in6 dst = v6("::ffff:198.51.100.2", 443);
    kw_ppv2_info_t info = {.src = (struct sockaddr *)&src, .dst = (struct sockaddr *)&dst};
    static const uint8_t want[] = {
        0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
        0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, /* signature */
        0x21, 0x11, 0x00, 0x0C,             /* v2 PROXY, TCP4, 12 */
        192,  0,    2,    1,    198,  51,
        100,  2,    0xC3, 0x50, 0x01, 0xBB, /* addresses, ports */
    };
    uint8_t out[KW_PPV2_MAX_LEN];
    size_t len = 0;
    assert_int_equal(kw_ppv2_encode(&info, out, sizeof(out), &len), 0);
    assert_int_equal(len, sizeof(want));
    assert_memory_equal(out, want, sizeof(want));
    /* A mapped source with a plain IPv6 destination cannot be IPv4: both stay IPv6. */
    struct sockaddr_in6 dst6 = v6("2001:db8::2", 443);
    info.dst = (struct sockaddr *)&dst6;
    assert_int_equal(kw_ppv2_encode(&info, out, sizeof(out), &len), 0);
    assert_int_equal(out[13], 0x21);
    assert_memory_equal(out + 16, &src.sin6_addr, 16);
}

static void test_mixed_families_unspec(void **state)
{
    struct sockaddr_in src = v4("127.0.0.1", 1);
    struct sockaddr_in6 dst = v6("::1", 2);
    kw_ppv2_info_t info = {.src = (struct sockaddr *)&src, .dst = (struct sockaddr *)&dst};
    uint8_t out[64];
    size_t len = 0;
    assert_int_equal(kw_ppv2_encode(&info, out, sizeof(out), &len), 0);
    assert_int_equal(out[13], 0x00);
    assert_int_equal(out[14], 0);
    assert_int_equal(out[15], 0);
    assert_int_equal(len, 16);
}

static void test_refusals(void **state)
{
    struct sockaddr_in src = v4("127.0.0.1", 1);
    struct sockaddr_in dst = v4("127.0.0.1", 2);
    kw_ppv2_info_t info = {.src = (struct sockaddr *)&src, .dst = (struct sockaddr *)&dst};
    uint8_t out[KW_PPV2_MAX_LEN];
    size_t len = 0;
    for (size_t cap = 0; cap < 28; cap++) {
        assert_int_equal(kw_ppv2_encode(&info, out, cap, &len), KW_ETOOBIG);
    }
    assert_int_equal(kw_ppv2_encode(&info, out, 28, &len), 0);
    assert_int_equal(len, 28);
    char longname[300];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    info.authority = longname;
    assert_int_equal(kw_ppv2_encode(&info, out, sizeof(out), &len), KW_EINVAL);
    info.authority = NULL;
    info.alpn = (const uint8_t *)longname;
    info.alpn_len = 256;
    assert_int_equal(kw_ppv2_encode(&info, out, sizeof(out), &len), KW_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv4_exact_bytes),  cmocka_unit_test(test_ipv6_and_cipher),
        cmocka_unit_test(test_v4_mapped_as_ipv4), cmocka_unit_test(test_mixed_families_unspec),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
