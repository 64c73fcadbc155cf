"""Certificates for the local cluster, made with the openssl command: one CA signs every serving and client
certificate; an RSA key pair signs service-account tokens."""

from __future__ import annotations

import subprocess
from pathlib import Path

DAYS = "3650"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(pki: Path) -> None:
    """A self-signed CA: ca.crt, ca.key."""
    _openssl(
        "req",
        "-x509",
        "-new",
        "-nodes",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        DAYS,
        "-subj",
        "/CN=zoo-local-cluster-ca",
        cwd=pki,
    )


def make_cert(
    pki: Path,
    name: str,
    cn: str,
    org: str = "",
    ips: tuple[str, ...] = (),
    dns: tuple[str, ...] = (),
    server: bool = False,
) -> None:
    """<name>.crt/<name>.key signed by the CA, for a client (CN/O = user/group) or a server (with SANs)."""
    subject = f"/CN={cn}" + (f"/O={org}" if org else "")
    _openssl(
        "req",
        "-new",
        "-nodes",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.csr",
        "-subj",
        subject,
        cwd=pki,
    )
    ext = ["basicConstraints=CA:FALSE", "keyUsage=critical,digitalSignature,keyEncipherment"]
    ext.append("extendedKeyUsage=serverAuth,clientAuth" if server else "extendedKeyUsage=clientAuth")
    sans = [f"IP:{ip}" for ip in ips] + [f"DNS:{d}" for d in dns]
    if sans:
        ext.append("subjectAltName=" + ",".join(sans))
    (pki / f"{name}.ext").write_text("\n".join(ext) + "\n")
    _openssl(
        "x509",
        "-req",
        "-in",
        f"{name}.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        f"{name}.crt",
        "-days",
        DAYS,
        "-extfile",
        f"{name}.ext",
        cwd=pki,
    )


def make_all(pki: Path, node_ips: list[str]) -> None:
    """Everything the cluster needs, unless it is already there."""
    if (pki / "done").exists():
        return
    pki.mkdir(parents=True, exist_ok=True)
    make_ca(pki)
    make_cert(
        pki,
        "apiserver",
        "kube-apiserver",
        server=True,
        ips=("127.0.0.1", "10.96.0.1"),
        dns=(
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ),
    )
    make_cert(pki, "admin", "zoo-admin", "system:masters")
    make_cert(pki, "apiserver-kubelet-client", "kube-apiserver-kubelet-client", "system:masters")
    make_cert(pki, "controller-manager", "system:kube-controller-manager")
    make_cert(pki, "scheduler", "system:kube-scheduler")
    make_cert(pki, "kubelet", "zoo-kubelet", server=True, ips=("127.0.0.1", *node_ips), dns=("localhost",))
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=pki)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)
    for path in pki.iterdir():
        if path.suffix in (".key",):
            path.chmod(0o600)
    (pki / "done").touch()
