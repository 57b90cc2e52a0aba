"""Where the ACME client and the router meet: paths inside both containers and the client's env.

Pure. The client (lego, driven by acme/renew.sh in the `PREFIX-acme` container) writes into the
TLS volume; the router mounts the same volume read-only and loads the certificate on every
handshake (core/router_config.py), so a renewal needs no reload (docs/rules.md, rule 1c).
"""

from __future__ import annotations

from pathlib import Path

from core.router_config import TLS_DIR, TlsFiles
from core.settings import AcmeSettings

RENEW_SCRIPT = Path(__file__).resolve().parent.parent / "acme" / "renew.sh"

# In the ACME container.
CLIENT_TLS_DIR = "/tls"  # the TLS volume
CLIENT_STATE_DIR = "/var/lib/acme"  # lego's account and certificates: a volume of its own
CLIENT_CA_FILE = "/etc/acme/test-ca.pem"  # tls.acme.caCertificatesPath, when set
CLIENT_SCRIPT = "/tmp/renew.sh"
CLIENT_LEGO = "/lego"  # where the goacme/lego image keeps the binary

# In the router container: the TLS volume is mounted at TLS_DIR.
ROUTER_CERTIFICATE = TlsFiles(f"{TLS_DIR}/certs/fullchain.pem", f"{TLS_DIR}/certs/privkey.pem", per_handshake=True)
ROUTER_WEBROOT = f"{TLS_DIR}/webroot"

# The script arrives in the environment and is written out at start, so an operator (and the
# tests) can run `docker exec PREFIX-acme sh /tmp/renew.sh now`. The directories must be
# searchable by nginx's unprivileged worker, which reads the certificate on every handshake.
BOOT = (
    f"mkdir -p {CLIENT_TLS_DIR}/certs {CLIENT_TLS_DIR}/webroot && "
    f"chmod 755 {CLIENT_TLS_DIR} {CLIENT_TLS_DIR}/certs {CLIENT_TLS_DIR}/webroot && "
    f'printf "%s" "$ACME_SCRIPT" > {CLIENT_SCRIPT} && exec sh {CLIENT_SCRIPT} loop'
)


# What `bluegreen renew-cert` runs in the container: a renewal now, due or not.
RENEW_NOW = ("sh", CLIENT_SCRIPT, "now")


def client_env(domain: str, acme: AcmeSettings, script: str) -> dict[str, str]:
    env = {
        "ACME_SCRIPT": script,
        "ACME_DOMAIN": domain,
        "ACME_DIRECTORY_URL": acme.directory_url,
        "ACME_WEBROOT": f"{CLIENT_TLS_DIR}/webroot",
        "ACME_STATE_DIR": CLIENT_STATE_DIR,
        "ACME_TLS_DIR": f"{CLIENT_TLS_DIR}/certs",
        # nginx loads a certificate named with a variable in its worker, whose user differs by
        # image (nginx, www-data): the key is readable by all inside a volume only the router
        # and this container mount.
        "ACME_KEY_MODE": "0644",
        "ACME_RENEW_DAYS": str(acme.renew_days),
        "ACME_CHECK_SECONDS": str(acme.check_seconds),
        "ACME_LEGO": CLIENT_LEGO,
    }
    if acme.email:
        env["ACME_EMAIL"] = acme.email
    if acme.ca_certificates_path:
        env["LEGO_CA_CERTIFICATES"] = CLIENT_CA_FILE
    return env
