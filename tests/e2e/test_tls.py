"""TLS and mutual TLS on a spawned server: certificates are made here, for this run only."""

import datetime
import ipaddress
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc
from rewards.v1 import catalog_pb2

from tests.conftest import new_program
from tests.helpers import make_api, spawn_server

TIMEOUT = 5


@dataclass
class Issued:
    cert: bytes
    key: bytes
    cert_path: Path
    key_path: Path


class Authority:
    """A throwaway certificate authority."""

    def __init__(self, directory: Path, name: str):
        self.directory = directory
        self.name = name
        self._key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} test CA")])
        self.certificate = (
            self._builder(subject, self._key.public_key())
            .issuer_name(subject)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
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
            .sign(self._key, hashes.SHA256())
        )
        self.pem = self.certificate.public_bytes(serialization.Encoding.PEM)
        self.path = directory / f"{name}-ca.pem"
        self.path.write_bytes(self.pem)

    @staticmethod
    def _builder(subject: x509.Name, public_key) -> x509.CertificateBuilder:
        now = datetime.datetime.now(datetime.UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
        )

    def issue(self, common_name: str, *, server: bool) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        builder = (
            self._builder(subject, key.public_key())
            .issuer_name(self.certificate.subject)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    ]
                ),
                critical=False,
            )
        cert = builder.sign(self._key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        cert_path = self.directory / f"{common_name}.pem"
        key_path = self.directory / f"{common_name}-key.pem"
        cert_path.write_bytes(cert)
        key_path.write_bytes(key_pem)
        return Issued(cert, key_pem, cert_path, key_path)


@dataclass
class Pki:
    ca: Authority
    rogue_ca: Authority
    server: Issued
    client: Issued
    rogue_client: Issued


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca = Authority(directory, "trusted")
    rogue = Authority(directory, "rogue")
    return Pki(
        ca=ca,
        rogue_ca=rogue,
        server=ca.issue("server", server=True),
        client=ca.issue("client", server=False),
        rogue_client=rogue.issue("rogue-client", server=False),
    )


def _tls_args(pki: Pki, *, mtls: bool) -> list[str]:
    args = ["--tls-cert", str(pki.server.cert_path), "--tls-key", str(pki.server.key_path)]
    if mtls:
        args += ["--tls-client-ca", str(pki.ca.path)]
    return args


@pytest.fixture(scope="module")
def tls_server(store, pki):
    server = spawn_server(store, *_tls_args(pki, mtls=False))
    yield server
    assert server.stop() == 0


@pytest.fixture(scope="module")
def mtls_server(store, pki):
    server = spawn_server(store, *_tls_args(pki, mtls=True))
    yield server
    assert server.stop() == 0


def _health(channel: grpc.Channel) -> health_pb2.HealthCheckResponse:
    stub = health_pb2_grpc.HealthStub(channel)
    return stub.Check(health_pb2.HealthCheckRequest(), timeout=TIMEOUT)


def _refused(channel: grpc.Channel) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        _health(channel)
    return caught.value.code()


def _secure(
    address: str, root: bytes, client: Issued | None = None, host: str = ""
) -> grpc.Channel:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=root,
        private_key=client.key if client else None,
        certificate_chain=client.cert if client else None,
    )
    target = address if not host else f"{host}:{address.rsplit(':', 1)[1]}"
    return grpc.secure_channel(target, credentials)


def _serving_line(server) -> dict:
    return next(
        entry
        for entry in map(json.loads, filter(lambda line: line.startswith("{"), server.stdout_lines))
        if entry.get("event") == "serving"
    )


def test_tls_client_is_served_and_authenticated(tls_server, pki):
    assert _serving_line(tls_server)["tls"] is True
    assert _serving_line(tls_server)["mtls"] is False
    issued = new_program("tls")
    for host in ("", "localhost"):  # the certificate names both 127.0.0.1 and localhost
        with _secure(tls_server.address, pki.ca.pem, host=host) as channel:
            assert _health(channel).status == health_pb2.HealthCheckResponse.SERVING
            api = make_api(channel, issued.program_id, issued.api_key)
            created = api.catalog.CreateAsset(
                catalog_pb2.CreateAssetRequest(
                    asset=catalog_pb2.Asset(code=f"TLS{len(host)}", name="Points", scale=0)
                ),
                timeout=TIMEOUT,
            )
            assert created.id.startswith("ast_")


def test_plaintext_client_cannot_talk_to_a_tls_server(tls_server):
    with grpc.insecure_channel(tls_server.address) as channel:
        assert _refused(channel) == grpc.StatusCode.UNAVAILABLE


def test_client_that_does_not_trust_the_server_certificate_fails(tls_server, pki):
    with _secure(tls_server.address, pki.rogue_ca.pem) as channel:
        assert _refused(channel) == grpc.StatusCode.UNAVAILABLE


def test_mtls_refuses_a_client_without_a_certificate(mtls_server, pki):
    assert _serving_line(mtls_server)["mtls"] is True
    with _secure(mtls_server.address, pki.ca.pem) as channel:
        assert _refused(channel) == grpc.StatusCode.UNAVAILABLE
    with grpc.insecure_channel(mtls_server.address) as channel:
        assert _refused(channel) == grpc.StatusCode.UNAVAILABLE


def test_mtls_refuses_a_certificate_from_another_authority(mtls_server, pki):
    with _secure(mtls_server.address, pki.ca.pem, pki.rogue_client) as channel:
        assert _refused(channel) == grpc.StatusCode.UNAVAILABLE


def test_mtls_serves_a_client_with_a_certificate_of_the_trusted_authority(mtls_server, pki):
    issued = new_program("mtls")
    with _secure(mtls_server.address, pki.ca.pem, pki.client) as channel:
        assert _health(channel).status == health_pb2.HealthCheckResponse.SERVING
        api = make_api(channel, issued.program_id, issued.api_key)
        pool = api.catalog.CreateCodePool(
            catalog_pb2.CreateCodePoolRequest(code_pool=catalog_pb2.CodePool(name="mtls")),
            timeout=TIMEOUT,
        )
        assert pool.id.startswith("pool_")
        # The certificate opens the connection; the API key still decides what a caller may do.
        anonymous = make_api(channel, issued.program_id, "rwk_not-a-key")
        with pytest.raises(grpc.RpcError) as caught:
            anonymous.catalog.GetCodePool(
                catalog_pb2.GetCodePoolRequest(id=pool.id), timeout=TIMEOUT
            )
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize(
    "args",
    [
        ["--tls-cert", "server.pem"],
        ["--tls-key", "server-key.pem"],
        ["--tls-client-ca", "ca.pem"],
    ],
    ids=["cert-without-key", "key-without-cert", "client-ca-without-cert"],
)
def test_incomplete_tls_flags_are_refused_before_serving(args, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "rewards_service", "--listen", "127.0.0.1:0", *args],
        cwd=tmp_path,
        env={**os.environ, "REWARDS_DATABASE_URL": f"sqlite:///{tmp_path / 'unused.db'}"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "--tls-" in done.stderr
    assert "serving" not in done.stdout + done.stderr
    assert not (tmp_path / "unused.db").exists()
