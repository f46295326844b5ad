/*
 * The key server's --help text (kw_ks_config_usage, config.h): every flag config.c parses, with
 * its default. Keep it in step with config.c's option table and docs/keyserver.md.
 */
#include <stdio.h>

#include "keyward/protocol.h"
#include "config/config.h"

/* Fleet session tickets (keystore/ticket_keys.h). */
static void usage_tickets(FILE *out)
{
    fputs("\n"
          "Fleet session tickets (docs/keyserver.md):\n"
          "  --ticket-secret FILE        serve session-ticket keys (0xA4) derived from FILE\n"
          "                              (>= 32 random bytes, mode 0600) to edges whose\n"
          "                              allow rule names the key spec 'tickets'\n"
          "  --ticket-rotation-s N       a ticket key encrypts for N seconds (default 3600)\n",
          out);
}

/* The options of the second enum block. */
static void usage_limits(FILE *out)
{
    fprintf(out, "\n"
                 "Audit durability, connection limits and fairness (docs/security.md):\n"
                 "  --audit-fsync[=yes|no]      fdatasync the audit log before replying (its\n"
                 "                              lines are always written before the reply)\n"
                 "  --frame-timeout-ms MS       a request frame must be complete MS after its\n"
                 "                              first byte (default 10000; 0: off)\n"
                 "  --rate-limit N              operations per second per edge (client key),\n"
                 "                              beyond: error 0x41 (default 0: no limit)\n"
                 "  --rate-burst N              operations an edge may send at once (default N)\n"
                 "  --max-handshakes N          connections still in their TLS handshake (not yet\n"
                 "                              edges); when full, the oldest is closed (default\n"
                 "                              256; 0: no limit). --max-connections counts edges\n"
                 "  --max-handshakes-per-ip N   the same per source address (default 64)\n"
                 "  --metrics-token-file FILE   /metrics requires 'Authorization: Bearer' and the\n"
                 "                              file's first line (default: no token)\n");
}

void kw_ks_config_usage(FILE *out)
{
    fprintf(
        out,
        "usage: keyward-keyserver --cert FILE --key FILE --ca FILE [options]\n"
        "       keyward-keyserver --config FILE [options]\n"
        "\n"
        "Serves private-key operations (KWP, Keyless SSL compatible) over mutual TLS.\n"
        "SIGHUP reloads keys, tokens and certificates; SIGTERM/SIGINT stop.\n"
        "\n"
        "  --config FILE               YAML configuration (every flag has a key there;\n"
        "                              flags given here override it)\n"
        "  --listen HOST:PORT          address to listen on (default 127.0.0.1:%d;\n"
        "                              IPv6 as [::1]:PORT)\n"
        "  --cert FILE                 the key server's own TLS certificate (PEM, required)\n"
        "  --key FILE                  its private key (PEM, required)\n"
        "  --ca FILE                   CA that signs client (edge) certificates (required)\n"
        "  --keys DIR                  directory of site keys NAME.key (+ NAME.crt chain);\n"
        "                              repeatable\n"
        "  --pkcs11-module PATH        PKCS#11 module holding site keys (e.g. SoftHSM2)\n"
        "  --pkcs11-token LABEL        its token, by label\n"
        "  --pkcs11-pin-file FILE      file whose first line is the token's user PIN\n"
        "  --workers N|auto            private-key worker threads (default auto: the CPUs we may\n"
        "                              run on; on one CPU, or with 0, the loop thread signs)\n"
        "  --idle-timeout-ms MS        close connections idle this long (default 60000)\n"
        "  --handshake-timeout-ms MS   close connections not through TLS in time (10000)\n"
        "  --max-inflight N            requests in flight per connection before reading\n"
        "                              pauses (default 256)\n"
        "  --max-connections N         refuse edges beyond N (default 0: no limit)\n"
        "  --request-timeout-ms MS     answer 0x08 for a key operation queued longer than\n"
        "                              this instead of running it (default 0: never)\n"
        "  --metrics HOST:PORT         serve Prometheus metrics at http://HOST:PORT/metrics\n"
        "  --upstream HOST:PORT        key server to forward requests for keys not held\n"
        "                              here to (repeatable: failover between them)\n"
        "  --upstream-cert FILE        identity towards upstreams (default: --cert)\n"
        "  --upstream-key FILE         its private key (default: --key)\n"
        "  --upstream-ca FILE          CA of the upstreams' certificates (default: --ca)\n"
        "  --upstream-timeout-ms MS    give up on an upstream answer after MS, answering\n"
        "                              0x42 (default 3000)\n"
        "  --allow EDGE=KEY[,KEY...]   authorise an edge for keys (repeatable; with any\n"
        "                              rule, everything not allowed is refused). EDGE:\n"
        "                              cn:NAME | san:DNSNAME | spki:HEX; KEY: * |\n"
        "                              sha256:HEX | ski:HEX | sni:NAME | sni:*.DOMAIN |\n"
        "                              file:NAME (key file base name). docs/fleet.md\n"
        "  --allow-all                 no rules, on purpose: every edge may use every key\n"
        "                              (needed to reload from some rules to none)\n"
        "  --enable-op NAME            perform NAME too (repeatable). By default only the\n"
        "                              TLS-safe set: signatures, tls-rsa-decrypt (0xA0),\n"
        "                              tls12-master-secret (0xA1), get-cert-chain, list-keys,\n"
        "                              ping. rsa-decrypt (0x01, a padding oracle; gokeyless\n"
        "                              edges need it for TLS 1.2 RSA key exchange) and\n"
        "                              rsa-decrypt-raw (0x08, alias rsa-raw-decrypt: forges\n"
        "                              any PKCS#1 signature) are off until named here\n"
        "  --audit-log FILE            append one JSON line per operation to FILE\n"
        "  --user NAME                 run as NAME (no root) once listening and keys are loaded\n"
        "  --rsa-cache-factors yes|no  yes: let OpenSSL cache p and q in ordinary memory, ~1.5x\n"
        "                              faster RSA (default no: docs/security.md)\n"
        "  --log-level LEVEL           debug, info, warn or error (default info)\n"
        "  --ctx-cache N               OpenSSL contexts cached per worker (default 64;\n"
        "                              0 makes one per operation)\n"
        "  --help                      this text\n",
        KW_DEFAULT_PORT);
    usage_limits(out);
    usage_tickets(out);
}
