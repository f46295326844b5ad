#!/usr/bin/env python3
"""ks_genkeys: N ECDSA P-256 keys (PKCS#8 PEM, mode 600) with a self-signed certificate each
(CN and SAN kNNNNNN.example), for bench/ks-many-keys.sh.
  ks_genkeys.py DIR N [FIRST]
Makes keys FIRST..N-1 (FIRST defaults to 0; several processes can share the range). Files that already exist are kept, so a cached directory grows instead of being rebuilt."""
import datetime
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def main():
    out, n = sys.argv[1], int(sys.argv[2])
    first = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    os.makedirs(out, exist_ok=True)
    now = datetime.datetime(2026, 1, 1)
    for i in range(first, n):
        name = "k%06d" % i
        key_path = os.path.join(out, name + ".key")
        if os.path.exists(key_path):
            continue
        key = ec.generate_private_key(ec.SECP256R1())
        host = name + ".example"
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                .public_key(key.public_key()).serial_number(i + 1)
                .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), False)
                .sign(key, hashes.SHA256()))
        with open(os.path.join(out, name + ".crt"), "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        fd = os.open(key_path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        os.rename(key_path + ".tmp", key_path)


if __name__ == "__main__":
    main()
