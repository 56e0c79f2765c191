"""Make a local certificate authority and a server certificate for the development stack
(compose.yml's `certificate` service and `make run-tls`).

    python deploy/tls/local_cert.py DIR [NAME ...]

writes DIR/ca.pem (trust it in a browser or with `curl --cacert`), DIR/cert.pem (server
certificate and CA) and DIR/key.pem (0600) for localhost, 127.0.0.1, ::1 and the NAMEs. An
existing certificate is kept while it has more than 30 days left, so the CA a browser was
told to trust stays the same. Needs only `cryptography` (a dependency of the backend).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_NAMES = ["localhost", "127.0.0.1", "::1"]


def _name(common: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Drift Monitor local development"),
            x509.NameAttribute(NameOID.COMMON_NAME, common),
        ]
    )


def _san(names: list[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def still_valid(cert_path: Path, days: int = 30) -> bool:
    if not cert_path.exists():
        return False
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return cert.not_valid_after_utc - dt.datetime.now(dt.UTC) > dt.timedelta(days=days)


def make(directory: Path, names: list[str]) -> None:
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("Drift Monitor local CA"))
        .issuer_name(_name("Drift Monitor local CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        # Browsers refuse server certificates valid for longer than 398 days.
        .not_valid_after(now + dt.timedelta(days=397))
        .add_extension(_san(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    pem = serialization.Encoding.PEM
    key_bytes = key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    key_path = directory / "key.pem"
    key_path.unlink(missing_ok=True)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key_bytes)
    (directory / "cert.pem").write_bytes(cert.public_bytes(pem) + ca.public_bytes(pem))
    (directory / "ca.pem").write_bytes(ca.public_bytes(pem))


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    directory = Path(argv[0])
    names = DEFAULT_NAMES + [n for n in argv[1:] if n not in DEFAULT_NAMES]
    if still_valid(directory / "cert.pem") and (directory / "key.pem").exists():
        print(f"keep     {directory / 'cert.pem'} (valid)")
        return 0
    make(directory, names)
    print(f"created  {directory / 'cert.pem'} for {', '.join(names)}; trust {directory / 'ca.pem'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
