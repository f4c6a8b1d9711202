"""The lab's certificate authority (Python's `cryptography`): one CA per
lab run, made at the lab's start, and the certificates it signs: the
controller's (it serves OpenFlow and the NSX API, and is the client of
every node's OVSDB) and one per node on the management network (its
bridges are OpenFlow clients of the controller, its ovsdb-server serves
the controller). Every certificate is good for both ends of a TLS session
(serverAuth and clientAuth): OVS and os-ken verify the peer's chain in
both directions. EC P-256 keys: made in milliseconds (docs/security.md
has the measured cost).

Files: the lab's PKI directory holds ca.pem (what clients trust), ca.key
and NAME.pem / NAME.key per certificate it issued; a node's own copy is
in its run directory (node_files), as a device keeps its own.
"""
import datetime
import ipaddress
import os
import shutil

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_DAYS = 30
CONTROLLER = 'controller'


def write_private(path, data):
    """`data` (bytes or str) into `path`, readable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'wb' if isinstance(data, bytes) else 'w') as f:
        f.write(data)


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME,
                                         'nsx-l2gw-lab'),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(path, key):
    write_private(path, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))


def _write_cert(path, cert):
    with open(path, 'wb') as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))


def _validity(builder):
    now = datetime.datetime.now(datetime.timezone.utc)
    return builder.not_valid_before(now - datetime.timedelta(minutes=5)) \
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))


def make_ca(directory, cn='nsx-l2gw-lab CA'):
    """A new CA in `directory` -> the path of ca.pem."""
    os.makedirs(directory, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (_validity(x509.CertificateBuilder())
            .subject_name(_name(cn)).issuer_name(_name(cn))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
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


class Issuer:
    """Signs certificates with the CA in `directory` (loaded once)."""

    def __init__(self, directory):
        self.dir = directory
        with open(os.path.join(directory, 'ca.key'), 'rb') as f:
            self.key = serialization.load_pem_private_key(f.read(), None)
        with open(os.path.join(directory, 'ca.pem'), 'rb') as f:
            self.ca = x509.load_pem_x509_certificate(f.read())

    def issue(self, name, ips=(), dns=(), cert_path=None, key_path=None):
        """A certificate for `name`, valid for the addresses `ips` and
        names `dns`, as server and as client -> (cert path, key path);
        NAME.pem / NAME.key in the CA's directory unless paths are given."""
        key = ec.generate_private_key(ec.SECP256R1())
        alt = [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips] + \
            [x509.DNSName(d) for d in dns]
        builder = (_validity(x509.CertificateBuilder())
                   .subject_name(_name(name)).issuer_name(self.ca.subject)
                   .public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .add_extension(x509.BasicConstraints(ca=False,
                                                        path_length=None),
                                  critical=True)
                   .add_extension(x509.ExtendedKeyUsage(
                       [ExtendedKeyUsageOID.SERVER_AUTH,
                        ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
        if alt:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(alt), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        cert_path = cert_path or os.path.join(self.dir, f'{name}.pem')
        key_path = key_path or os.path.join(self.dir, f'{name}.key')
        _write_key(key_path, key)
        _write_cert(cert_path, cert)
        return cert_path, key_path


def issue(directory, name, ips=(), dns=()):
    """One certificate from the CA in `directory` (see Issuer.issue)."""
    return Issuer(directory).issue(name, ips, dns)


def node_files(run_dir):
    """Where a node keeps its key, its certificate and the CA it trusts:
    {'key', 'cert', 'ca'} (paths in its run directory)."""
    return {'key': os.path.join(run_dir, 'tls.key'),
            'cert': os.path.join(run_dir, 'tls.pem'),
            'ca': os.path.join(run_dir, 'ca.pem')}


def controller_files(directory):
    """The controller's key, certificate and CA in the lab's PKI
    directory: {'key', 'cert', 'ca'}."""
    return {'key': os.path.join(directory, f'{CONTROLLER}.key'),
            'cert': os.path.join(directory, f'{CONTROLLER}.pem'),
            'ca': os.path.join(directory, 'ca.pem')}


def client_args(directory):
    """What an OVS tool (vtep-ctl, ovsdb-client, ovn-controller-vtep) is
    given to reach a node's OVSDB over TLS as the controller does: the
    controller's key and certificate, and the lab's CA."""
    f = controller_files(directory)
    return [f"--private-key={f['key']}", f"--certificate={f['cert']}",
            f"--ca-cert={f['ca']}"]


def make_lab(directory, controller_ip, nodes, cluster=None):
    """The PKI of one lab run: a new CA in `directory`, the controller's
    certificate (for `controller_ip`) and, for each of `nodes` ({name:
    (run directory, management address)}), the node's key, certificate and
    a copy of ca.pem in its run directory (node_files); for each node of a
    controller `cluster` ({name: (directory, address)}), controller_files
    in its directory (its controller's and its etcd member's)."""
    ca = make_ca(directory)
    issuer = Issuer(directory)
    issuer.issue(CONTROLLER, ips=[controller_ip])
    for name, (run_dir, ip) in (cluster or {}).items():
        files = controller_files(run_dir)
        os.makedirs(run_dir, exist_ok=True)
        issuer.issue(name, ips=[ip], cert_path=files['cert'],
                     key_path=files['key'])
        shutil.copyfile(ca, files['ca'])
    for name, (run_dir, ip) in nodes.items():
        files = node_files(run_dir)
        os.makedirs(run_dir, exist_ok=True)
        issuer.issue(name, ips=[ip], cert_path=files['cert'],
                     key_path=files['key'])
        shutil.copyfile(ca, files['ca'])
    return controller_files(directory)
