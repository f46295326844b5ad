/*
 * Fixed test keys and self-signed certificates for keyserver_dispatch_fuzz.c (generated once
 * with openssl genpkey / req -x509; test-only keys, never used anywhere else). Fixed keys keep the
 * fuzzer's start-up fast (no RSA key generation) and the seed corpus valid: seeds name these keys
 * by digest. Regenerating them requires regenerating the seeds (gen_keyserver_dispatch_seeds.sh).
 */
#ifndef KW_KEYSERVER_DISPATCH_KEYS_H
#define KW_KEYSERVER_DISPATCH_KEYS_H

typedef struct kw_fuzz_pem_s {
    const char *name; /* file name in the temporary key directory */
    const char *pem;
} kw_fuzz_pem_t;

static const kw_fuzz_pem_t kw_fuzz_pems[] = {
    {"rsa2048.key",
     "-----BEGIN PRIVATE KEY-----\n"
     "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQChhtsxRR1FugDb\n"
     "Tdz67ECr4LOVtQljBV+F5oVIRl6LqGQx3hvv2hXZtZsGLDd6wKi4MwmkjiX67SSz\n"
     "goFu9SIFbUUvPO97lDssa13oX+2JKHWDymnDVRcjnzzqir7owXzVZScPrPvfasGN\n"
     "CykqOqKQdiGf9TP/gqWpEDOdT67KFS6QTMz0bYndymTHyPA2Q6nPZENk+SN4mnlU\n"
     "EXryMYeIHwBpS4UqwwfBXoVWAyZjAH09R+s4jDLaZ49J8OwBeZpMIr+1s2S64/oo\n"
     "VWxW3W0iRL0ZA7uWtNjV3diCT96GxFHf8ejulTLkrKkf/Gf9crxNPccYMioMxcSA\n"
     "NvQZoOFJAgMBAAECggEAC+KDuBXtL99I0a9ijM47ekS5L1D9J5LH4u7hoX4sqzXL\n"
     "kiq/n0/f2d9lpcLfndHVUuD4eungTAdNCG3tZEgM8IgddiVo5ozIfNMf5f7sQp0I\n"
     "5oFLHmL2pfmWY8Mr2wLk5+upKoYFw1F+0R1Vh6SoUkegNOg3uFC5K93ED8qtjPNQ\n"
     "0A0iHFan3/sDuGgugw3TxiC8tmlMALGgeFHTXdx2TBcTpQ362mkvPHFTH5G2LikS\n"
     "WoSRWAsmj64vn7J8hyBsPmtHnJAt4PLywsDSkBy6Ws72jwGRiJ3ju90cBpVdZtJr\n"
     "zd1lwcoQMv4TnaCD7A2l9c4c8awtYgz68QPiGJ9ITQKBgQDfeIvt1Q9K7OZJ/ngD\n"
     "6qqqbXr0Jibjy//KWhZwzXrK2BnWFNiZGaITSHhggdlljjnZUeeBUgps0wvI8Gtp\n"
     "KQbT4nD8Q0k7+7PVgMwldyM8/hcDHN+eD+9LJK0m9svTMwe/nNPtn90r1Bx4tPP1\n"
     "aztxnNQ6yiHWokSLhUzBM5llHQKBgQC5CgPaQMuzJnIzPzbnozLhijkcZVdiDeje\n"
     "3+FnyFtTslu9vhFFCEYtBwqzd5I7i2Xajn88HA5w1876y21aPDWz82ARC4M5h4mq\n"
     "srdGaI/vcQV/F9MgNfzJjwtngaWkPqXEbfDBrsH5O2Z8gGvC55IWLpsIFItNw2IX\n"
     "NheJEPeRHQKBgDOEEp3tM+1N13jPVNNyUY2gV2vZL7Xr3TfEtM+kTt5cGvijLZt9\n"
     "sUNIvZdh17/1nZhfrUK+qvCTZnAYHGrNrmlCFlHRIRzW1YoueuFYKaNx39Qz38kM\n"
     "W1mzRsdotWwmo26ktKZe6BmmeDnLXUICSl3SjYpP9qUIG00emacgQghxAoGAQbzo\n"
     "H3rTo4LuIXy80dBt/CiyH391avWMHNom50sL/xEnfKJw2jiVTdvpllbNke/1MI9d\n"
     "bop9KuPQudLZt6waXCMDpyqS5TZc11MEv7PYJvXdQQjCzffAJg92usAZi99h3wY7\n"
     "+WNPsG7E+0hYgHbqtIy8MUOzNd5LE/n4pI5tlZUCgYEAovUNBRC43DId3kPofJjX\n"
     "gPB4NwRwMwpws8encJeD2NUCOzA2M2a0pdj+yE/3cCXpKL+jZNgrhblcCkiHOfRg\n"
     "vSOAYSi5a1TGxiZikBhP29mtg66QJGy8rTgOqPszhYJ4GdLPCnnuD9BIme6TCpCc\n"
     "KJFvq/L3es4q1rYVWDaUMFA=\n"
     "-----END PRIVATE KEY-----\n"
    },
    {"rsa2048.crt",
     "-----BEGIN CERTIFICATE-----\n"
     "MIIDOTCCAiGgAwIBAgIULqAZiSs2GqxS38eNpqfYdwmiMJIwDQYJKoZIhvcNAQEL\n"
     "BQAwHDEaMBgGA1UEAwwRcnNhMjA0OC5mdXp6LnRlc3QwIBcNMjYxMTI0MTYwMTM1\n"
     "WhgPMjEyNjEwMzExNjAxMzVaMBwxGjAYBgNVBAMMEXJzYTIwNDguZnV6ei50ZXN0\n"
     "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAoYbbMUUdRboA203c+uxA\n"
     "q+CzlbUJYwVfheaFSEZei6hkMd4b79oV2bWbBiw3esCouDMJpI4l+u0ks4KBbvUi\n"
     "BW1FLzzve5Q7LGtd6F/tiSh1g8ppw1UXI5886oq+6MF81WUnD6z732rBjQspKjqi\n"
     "kHYhn/Uz/4KlqRAznU+uyhUukEzM9G2J3cpkx8jwNkOpz2RDZPkjeJp5VBF68jGH\n"
     "iB8AaUuFKsMHwV6FVgMmYwB9PUfrOIwy2mePSfDsAXmaTCK/tbNkuuP6KFVsVt1t\n"
     "IkS9GQO7lrTY1d3Ygk/ehsRR3/Ho7pUy5KypH/xn/XK8TT3HGDIqDMXEgDb0GaDh\n"
     "SQIDAQABo3EwbzAdBgNVHQ4EFgQUlHzgk0Ly1rfILRsQRB0h+J57sdkwHwYDVR0j\n"
     "BBgwFoAUlHzgk0Ly1rfILRsQRB0h+J57sdkwDwYDVR0TAQH/BAUwAwEB/zAcBgNV\n"
     "HREEFTATghFyc2EyMDQ4LmZ1enoudGVzdDANBgkqhkiG9w0BAQsFAAOCAQEAh9w7\n"
     "e9NjJMTxzhn2QKnjNKnPUwYHrhsK95D3pD8EJkygoi/cOTi7t05fdTa+FzzSTSj0\n"
     "BUC2eGYjVACnR977wS7v+7qd+ojlF7xlCwtTKVLVHTQVONDZNDjHwAJG6b+CQLTF\n"
     "C0z5qMMdKu2JAxSh+ah4KSSqGUcfaB+bZiddQfk86/1OQNicgJCRXliE6jFKd6me\n"
     "C4zbxBD3jMZ2FByhZ5OHOr0/UkiFm/HXzmB/AKxlVo8pKVqNJdzfAZ3I9LGGOLBw\n"
     "/+DkOqXi25hTdfnsEJFZe1Hom35tVn3WR/jL1OpIboahrGre3vKRift4KLNrS6HS\n"
     "toFEcOhh9iQU5RkqRw==\n"
     "-----END CERTIFICATE-----\n"
    },
    {"p256.key",
     "-----BEGIN PRIVATE KEY-----\n"
     "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgz2j0ej0K1iiMs2ac\n"
     "nDECZ1vRhkP1OJGk5Nwx3/P8H4GhRANCAAQmBlBUd9xZjKMgTNogZoTJ4fh0heAx\n"
     "ioCY6JU8M4hlOcWk/D92fdUD30zCc05P8nXiJs2hkhhJCEP8/SJ0KSmk\n"
     "-----END PRIVATE KEY-----\n"
    },
    {"p256.crt",
     "-----BEGIN CERTIFICATE-----\n"
     "MIIBpDCCAUqgAwIBAgIUNnOJooaGC8mXU0eECHqP9roG03IwCgYIKoZIzj0EAwIw\n"
     "GTEXMBUGA1UEAwwOcDI1Ni5mdXp6LnRlc3QwIBcNMjYxMTI0MTYwMTM1WhgPMjEy\n"
     "NjEwMzExNjAxMzVaMBkxFzAVBgNVBAMMDnAyNTYuZnV6ei50ZXN0MFkwEwYHKoZI\n"
     "zj0CAQYIKoZIzj0DAQcDQgAEJgZQVHfcWYyjIEzaIGaEyeH4dIXgMYqAmOiVPDOI\n"
     "ZTnFpPw/dn3VA99MwnNOT/J14ibNoZIYSQhD/P0idCkppKNuMGwwHQYDVR0OBBYE\n"
     "FB4Yv1rS24Txul3UXU4C9ZiKwR2mMB8GA1UdIwQYMBaAFB4Yv1rS24Txul3UXU4C\n"
     "9ZiKwR2mMA8GA1UdEwEB/wQFMAMBAf8wGQYDVR0RBBIwEIIOcDI1Ni5mdXp6LnRl\n"
     "c3QwCgYIKoZIzj0EAwIDSAAwRQIhAOsRXmsOszZyt801cdFEpvR3kS0e3KpWlkb9\n"
     "e/OsSIAbAiB/ybJVhxACIei4mXUVqsZiiVZfYBHMVMybmtrxeHbY/Q==\n"
     "-----END CERTIFICATE-----\n"
    },
    {"ed25519.key",
     "-----BEGIN PRIVATE KEY-----\n"
     "MC4CAQAwBQYDK2VwBCIEINahwH64FFd/EkCfmFjhyaeFBrxIGo4wBmDKfBchXqan\n"
     "-----END PRIVATE KEY-----\n"
    },
    {"ed25519.crt",
     "-----BEGIN CERTIFICATE-----\n"
     "MIIBbTCCAR+gAwIBAgIUeJNW7a5jGQVnRcPRxaPs6z9l3qEwBQYDK2VwMBwxGjAY\n"
     "BgNVBAMMEWVkMjU1MTkuZnV6ei50ZXN0MCAXDTI2MTEyNDE2MDEzNVoYDzIxMjYx\n"
     "MDMxMTYwMTM1WjAcMRowGAYDVQQDDBFlZDI1NTE5LmZ1enoudGVzdDAqMAUGAytl\n"
     "cAMhADaJ3s0I7hTLW+YRbo4PvZCRDIcTv6dSgp5VWFYoTiTLo3EwbzAdBgNVHQ4E\n"
     "FgQU/TNpZ20BwHGUryF2lh2HDf8IbAUwHwYDVR0jBBgwFoAU/TNpZ20BwHGUryF2\n"
     "lh2HDf8IbAUwDwYDVR0TAQH/BAUwAwEB/zAcBgNVHREEFTATghFlZDI1NTE5LmZ1\n"
     "enoudGVzdDAFBgMrZXADQQAjHGu0Jb5B/IYDTUpVDdGxRmsW9/9iamwKDaXj5CHI\n"
     "47AeCtyACWRuezf1Dq+/+S8udrqmtfAbFOfYq62hMFoE\n"
     "-----END CERTIFICATE-----\n"
    },
};

#endif /* KW_KEYSERVER_DISPATCH_KEYS_H */
