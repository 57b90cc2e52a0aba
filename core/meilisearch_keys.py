"""Meilisearch API keys scoped below the master key, so the master key stays in Meilisearch.

Meilisearch derives a key from its uid: hex(HMAC-SHA256(master key, uid)) (its
meilisearch-auth `generate_key_as_hexa`). So the program knows each key's value without
reading it back, and a key made with a fixed uid has the same value on every host with the same
master key. Two keys:
- the backend's (Medusa's MEILISEARCH_API_KEY with services.hardened): index, document and
  settings work, searches, task status; no keys, dumps, snapshots or swaps;
- the storefront's (the `storefrontSearchKey` stack output): search only.

`ensure_keys_script` runs in the Meilisearch container (docker exec: the master key is already in
its environment, so it travels nowhere). It is idempotent: a key whose description carries its
spec's digest is left alone; a key with an older spec is deleted and made again (same uid, so the
same value; Meilisearch keeps a key's actions fixed once made).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import shlex
from dataclasses import dataclass

MEILISEARCH_URL_INSIDE = "http://127.0.0.1:7700"


@dataclass(frozen=True)
class KeySpec:
    uid: str
    name: str
    purpose: str
    actions: tuple[str, ...]
    indexes: tuple[str, ...] = ("*",)

    @property
    def marker(self) -> str:
        text = json.dumps([self.name, list(self.actions), list(self.indexes)], separators=(",", ":"))
        return "spec-" + hashlib.sha256(text.encode()).hexdigest()[:16]

    def body(self) -> str:
        return json.dumps({
            "uid": self.uid, "name": self.name, "description": f"{self.purpose} (medusa-bluegreen {self.marker})",
            "actions": list(self.actions), "indexes": list(self.indexes), "expiresAt": None,
        }, separators=(",", ":"))


BACKEND_KEY = KeySpec(
    uid="7be4637b-07db-4391-9e5f-2e80a69b96ba",
    name="medusa-backend",
    purpose="Medusa server and worker: indexes, documents, settings, search",
    actions=("search", "documents.add", "documents.get", "documents.delete", "indexes.create", "indexes.get",
             "indexes.update", "indexes.delete", "tasks.get", "settings.get", "settings.update", "stats.get",
             "version"),
)
STOREFRONT_KEY = KeySpec(
    uid="74f5cbf7-0192-43d8-b9ac-d8861f6951c8",
    name="storefront-search",
    purpose="the storefront's browser: search only",
    actions=("search",),
)
KEYS = (BACKEND_KEY, STOREFRONT_KEY)


def derive_key(master_key: str, spec: KeySpec) -> str:
    return hmac.new(master_key.encode(), spec.uid.encode(), hashlib.sha256).hexdigest()


# The master key reaches curl as a config line on stdin (printf is a builtin): on no argv, inside
# the container or on the host. `\` and `"` are escaped for curl's quoted strings.
_SCRIPT_HEAD = r"""set -eu
url="${MEILI_URL:-%(url)s}"; out=$(mktemp); trap 'rm -f "$out"' EXIT
master=$(printf '%%s' "$MEILI_MASTER_KEY" | sed 's/[\\"]/\\&/g')
api() { printf 'header = "Authorization: Bearer %%s"\n' "$master" \
  | curl --silent --show-error -K - -H 'Content-Type: application/json' -o "$out" -w '%%{http_code}' "$@"; }
fail() { echo "meilisearch keys: $1: $(head -c 600 "$out" 2>/dev/null)" >&2; exit 1; }
tries=0
until curl --silent --fail --max-time 2 "$url/health" >/dev/null 2>&1; do
  tries=$((tries + 1))
  [ "$tries" -lt 60 ] || { echo "meilisearch keys: no answer from $url/health in 60 s" >&2; exit 1; }
  sleep 1
done
ensure() {
  code=$(api "$url/keys/$1")
  if [ "$code" = 200 ] && grep -q "$2" "$out"; then echo "key $3: as specified"; return; fi
  if [ "$code" = 200 ]; then
    code=$(api -X DELETE "$url/keys/$1"); [ "$code" = 204 ] || fail "deleting the old $3 key answered $code"
  elif [ "$code" != 404 ]; then fail "reading the $3 key answered $code"; fi
  code=$(api -X POST --data "$4" "$url/keys"); [ "$code" = 201 ] || fail "creating the $3 key answered $code"
  echo "key $3: created"
}
"""


def ensure_keys_script(url: str = MEILISEARCH_URL_INSIDE) -> str:
    calls = "".join(
        "ensure " + " ".join(shlex.quote(part) for part in (spec.uid, spec.marker, spec.name, spec.body())) + "\n"
        for spec in KEYS
    )
    return _SCRIPT_HEAD % {"url": url} + calls


def ensure_keys(container: str) -> str:
    """The command line that makes the keys in the running Meilisearch container."""
    return " ".join(shlex.quote(arg) for arg in ("docker", "exec", container, "sh", "-c", ensure_keys_script()))
