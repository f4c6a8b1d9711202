"""The lab's certificate authority (Python's `cryptography`): one CA per
lab run, certificates it signs for the lab's servers (today the NSX API:
HTTPS). EC P-256 keys: made in milliseconds, so TLS costs the boot
nothing measurable (docs/security.md).

Files, in `directory`: ca.pem (what clients trust), ca.key, and per
server NAME.pem / NAME.key (keys mode 0600).
"""
import datetime
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

VALID_DAYS = 30


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME,
                                         'nsx-l2gw-lab'),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(path, key):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'wb') as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))


def _write_cert(path, cert):
    with open(path, 'wb') as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))


def make_ca(directory, cn='nsx-l2gw-lab CA'):
    """A new CA in `directory` -> the path of ca.pem."""
    os.makedirs(directory, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(_name(cn)).issuer_name(_name(cn))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0),
                           critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False,
                encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    _write_key(os.path.join(directory, 'ca.key'), key)
    _write_cert(os.path.join(directory, 'ca.pem'), cert)
    return os.path.join(directory, 'ca.pem')


def issue(directory, name, ips=(), dns=()):
    """A server certificate for `name`, valid for the addresses `ips` and
    names `dns`, signed by the CA in `directory` -> (cert path, key path).
    """
    with open(os.path.join(directory, 'ca.key'), 'rb') as f:
        ca_key = serialization.load_pem_private_key(f.read(), None)
    with open(os.path.join(directory, 'ca.pem'), 'rb') as f:
        ca = x509.load_pem_x509_certificate(f.read())
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    alt = [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips] + \
        [x509.DNSName(d) for d in dns]
    cert = (x509.CertificateBuilder()
            .subject_name(_name(name)).issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                           critical=True)
            .add_extension(x509.ExtendedKeyUsage(
                [x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_path = os.path.join(directory, f'{name}.pem')
    key_path = os.path.join(directory, f'{name}.key')
    _write_key(key_path, key)
    _write_cert(cert_path, cert)
    return cert_path, key_path
