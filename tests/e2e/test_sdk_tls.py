"""The SDK over TLS and mutual TLS, against real servers with certificates from a test CA."""

import shutil
import subprocess
from pathlib import Path

import pytest
import rewards_client as rc
from rewards_client import RewardsClient

from rewards_service.config import Config
from rewards_service.server import build_server
from tests.conftest import new_program

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _signed(name: str, cn: str, extensions: str, cwd: Path) -> None:
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}",
        cwd=cwd,
    )  # fmt: skip
    (cwd / f"{name}.ext").write_text(extensions)
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", f"{name}.pem", "-days", "1", "-extfile", f"{name}.ext",
        cwd=cwd,
    )  # fmt: skip


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("certs")
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=rewards test CA",
        cwd=d,
    )  # fmt: skip
    _signed("server", "localhost", "subjectAltName=IP:127.0.0.1,DNS:localhost\n", d)
    _signed("client", "sdk-client", "extendedKeyUsage=clientAuth\n", d)
    return d


def _serve(certs: Path, *, mutual: bool):
    return build_server(
        Config(
            listen="127.0.0.1:0",
            threads=4,
            tls_cert=str(certs / "server.pem"),
            tls_key=str(certs / "server.key"),
            tls_client_ca=str(certs / "ca.pem") if mutual else None,
        )
    )


@pytest.fixture(scope="module")
def tls_target(server, certs):
    running = _serve(certs, mutual=False)
    yield f"127.0.0.1:{running.port}"
    running.stop(grace=None)


@pytest.fixture(scope="module")
def mtls_target(server, certs):
    running = _serve(certs, mutual=True)
    yield f"127.0.0.1:{running.port}"
    running.stop(grace=None)


def assert_unreachable(client: RewardsClient) -> None:
    with client, pytest.raises(rc.Unavailable):
        client.list_assets()


def test_tls_with_the_servers_ca(tls_target, certs):
    key = new_program("sdk-tls").api_key
    ca = (certs / "ca.pem").read_bytes()
    with RewardsClient(tls_target, key, tls=True, root_certificates=ca) as client:
        asset = client.create_asset(code="POINTS", name="Points", scale=2)
        assert client.get_asset(asset.id) == asset


def test_tls_refuses_an_untrusted_server(tls_target):
    key = new_program("sdk-tls").api_key
    assert_unreachable(RewardsClient(tls_target, key, tls=True, max_attempts=1))


def test_plaintext_to_a_tls_server_fails(tls_target):
    assert_unreachable(RewardsClient(tls_target, new_program("sdk-tls").api_key, max_attempts=1))


def test_mutual_tls_with_a_client_certificate(mtls_target, certs):
    key = new_program("sdk-mtls").api_key
    with RewardsClient(
        mtls_target,
        key,
        root_certificates=(certs / "ca.pem").read_bytes(),
        private_key=(certs / "client.key").read_bytes(),
        certificate_chain=(certs / "client.pem").read_bytes(),
    ) as client:
        assert list(client.iter_assets()) == []


def test_mutual_tls_without_a_client_certificate_fails(mtls_target, certs):
    key = new_program("sdk-mtls").api_key
    ca = (certs / "ca.pem").read_bytes()
    assert_unreachable(RewardsClient(mtls_target, key, root_certificates=ca, max_attempts=1))
