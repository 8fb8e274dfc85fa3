"""mTLS certificates and CA chains (``wrangler cert ...``). The private key of
an mTLS certificate is stored for the runtime and never shown back.

PEM is read with the standard library: ``ssl`` decodes the leaf certificate for
its issuer, serial number and expiry, and checks that a private key matches it.
"""

import re
import ssl
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet

from accounts.exceptions import Conflict, DomainError, InvalidInput, NotFound
from accounts.models import Certificate, CloudAccount, WorkerScript
from accounts.services.locking import lock_live_account
from accounts.services.validation import is_hex_id

CERTIFICATE_BLOCK = re.compile(
    r"-----BEGIN CERTIFICATE-----\s+[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----"
)
PRIVATE_KEY_BLOCK = re.compile(r"-----BEGIN ((RSA|EC) )?PRIVATE KEY-----")
# How issuers are usually written: "O=Example, CN=Example CA".
SHORT_NAMES = {
    "commonName": "CN",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "countryName": "C",
    "stateOrProvinceName": "ST",
    "localityName": "L",
}


class CertificateNotFound(NotFound):
    code = 1404
    message = "Certificate not found."


class TooManyCertificates(DomainError):
    code = 1405
    message = "This account has as many certificates as it may have."


def list_certificates(
    *, account: CloudAccount, ca: bool | None = None, name: str = ""
) -> QuerySet[Certificate]:
    rows = account.certificates.order_by("uploaded_on", "id")
    if ca is not None:
        rows = rows.filter(kind=Certificate.Kind.CA if ca else Certificate.Kind.MTLS)
    return rows.filter(name=name) if name else rows


def get_certificate(*, account: CloudAccount, certificate_id: str) -> Certificate:
    certificate = _certificates(account, certificate_id).first()
    if certificate is None:
        raise CertificateNotFound()
    return certificate


def _certificates(account: CloudAccount, certificate_id: str) -> QuerySet[Certificate]:
    if not is_hex_id(certificate_id):
        return account.certificates.none()
    return account.certificates.filter(pk=certificate_id)


@dataclass(frozen=True)
class LeafDetails:
    issuer: str
    serial_number: str
    expires_on: datetime | None


def _read_pem(chain: str, private_key: str | None) -> LeafDetails:
    """The first certificate's details; with ``private_key``, proof that it is
    the certificate's key. Raises InvalidInput."""
    first = CERTIFICATE_BLOCK.search(chain)
    if first is None:
        raise InvalidInput(
            "'certificates' must hold PEM certificates (-----BEGIN CERTIFICATE-----)."
        )
    with tempfile.TemporaryDirectory() as folder:
        cert_file = Path(folder) / "cert.pem"
        cert_file.write_text(first.group(0) + "\n")
        try:
            decoded = ssl._ssl._test_decode_cert(str(cert_file))  # type: ignore[attr-defined]
        except (ssl.SSLError, ValueError) as exc:
            raise InvalidInput(
                "The certificate could not be read as X.509 PEM."
            ) from exc
        if private_key is not None:
            key_file = Path(folder) / "key.pem"
            key_file.write_text(private_key)
            key_file.chmod(0o600)
            try:
                ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(
                    str(cert_file), str(key_file)
                )
            except (ssl.SSLError, ValueError) as exc:
                raise InvalidInput(
                    "The private key is not a readable, unencrypted PEM key for "
                    "this certificate."
                ) from exc
    issuer = ", ".join(
        f"{SHORT_NAMES.get(name, name)}={value}"
        for rdn in decoded.get("issuer", ())
        for name, value in rdn
    )
    not_after = decoded.get("notAfter")
    expires = (
        datetime.fromtimestamp(ssl.cert_time_to_seconds(not_after), tz=UTC)
        if not_after
        else None
    )
    return LeafDetails(
        issuer=issuer[:500],
        serial_number=str(decoded.get("serialNumber", ""))[:100],
        expires_on=expires,
    )


def upload_certificate(
    *,
    account: CloudAccount,
    certificates: str,
    now: datetime,
    ca: bool = False,
    name: str = "",
    private_key: str | None = None,
) -> Certificate:
    """Store an mTLS certificate with its key (``ca`` false) or a CA chain;
    ``certificates`` and ``private_key`` are PEM text.

    Raises InvalidInput (not PEM, key missing or not matching, a key sent with a
    CA), TooManyCertificates.
    """
    chain = certificates
    key = None
    if ca:
        if private_key:
            raise InvalidInput("A CA certificate is uploaded without a private key.")
    else:
        if not private_key:
            raise InvalidInput("'private_key' is required for an mTLS certificate.")
        key = private_key
        if not PRIVATE_KEY_BLOCK.search(key):
            raise InvalidInput(
                "'private_key' must be an unencrypted PEM private key "
                "(-----BEGIN PRIVATE KEY-----)."
            )
    details = _read_pem(chain, key)
    with transaction.atomic():
        lock_live_account(account_id=account.pk, now=now)
        if account.certificates.count() >= settings.CLAIMPORTAL_CERTIFICATES_MAX:
            raise TooManyCertificates(
                f"An account may have {settings.CLAIMPORTAL_CERTIFICATES_MAX} "
                "certificates; delete one first."
            )
        return Certificate.objects.create(
            account=account,
            name=name,
            kind=Certificate.Kind.CA if ca else Certificate.Kind.MTLS,
            certificate=chain,
            private_key=key or "",
            issuer=details.issuer,
            serial_number=details.serial_number,
            expires_on=details.expires_on,
            uploaded_on=now,
        )


def _users_of(certificate: Certificate) -> list[str]:
    """What still refers to the certificate: Hyperdrive configs and Workers."""
    users = [
        f"Hyperdrive config '{config.name}'"
        for config in certificate.account.hyperdrive_configs.all()
        if certificate.pk in (config.mtls or {}).values()
    ]
    scripts = WorkerScript.objects.filter(
        account=certificate.account, current_version__isnull=False
    ).values_list("name", "current_version__bindings")
    for script, bindings in scripts:
        if any(
            isinstance(b, dict) and b.get("certificate_id") == certificate.pk
            for b in bindings or []
        ):
            users.append(f"Worker '{script}'")
    return users


@transaction.atomic
def delete_certificate(*, account: CloudAccount, certificate_id: str) -> None:
    """Raises CertificateNotFound, Conflict (still in use)."""
    lock_live_account(account_id=account.pk)
    certificate = _certificates(account, certificate_id).select_for_update().first()
    if certificate is None:
        raise CertificateNotFound()
    users = _users_of(certificate)
    if users:
        raise Conflict(
            f"Certificate {certificate.pk} is still used by {', '.join(users)}; "
            "remove it there first."
        )
    certificate.delete()
