"""Every bad input gets a clear, specific error before any resource exists (rule 10)."""

import ipaddress
import json
from pathlib import Path

import pytest

from core.component_inputs import PROJECT_DIR
from core.settings import SECRET_KEYS, SettingsError, load_settings
from core.settings.types import looks_like_a_secret
from tests.unit.configs import config

BAD_CONFIGS = [
    (
        {"canary": json.dumps({"weight": 10})},
        "canary.weight: a canary step (10 %) keeps the other clients on green, which needs greenImage and "
        "otherColor warm; release without a canary (`pulumi config rm --path canary.weight`) or set greenImage "
        "to what is live",
    ),
    ({"canary": json.dumps({"weight": 101})}, "canary.weight: input should be less than or equal to 100"),
    (
        {"medusa": json.dumps({"serverReplicas": 0})},
        "medusa.serverReplicas: input should be greater than or equal to 1",
    ),
    (
        {"healthGate": json.dumps({"checks": [{"path": "/app", "expectedStatus": 404}]})},
        "healthGate.checks[0].expectedStatus: unknown setting; did you mean 'healthGate.checks[0].expectStatus'? "
        "(`pulumi config rm --path healthGate.checks[0].expectedStatus`, then set "
        "`healthGate.checks[0].expectStatus`)",
    ),
    (
        {"healthGate": json.dumps({"checks": [{"path": "https://api.shop.example.com/app"}]})},
        "healthGate.checks[0].path: 'https://api.shop.example.com/app' is not a path; write the path only, "
        "starting with /, e.g. /health",
    ),
    (
        {"healthGate": json.dumps({"checks": [{"path": "/app", "expectStatus": 700}]})},
        "healthGate.checks[0].expectStatus: input should be less than or equal to 599",
    ),
    ({"medusa": json.dumps({"serverReplicas": 9})}, "medusa.serverReplicas: input should be less than or equal to 8"),
    (
        {"medusa": json.dumps({"serverReplicas": "two"})},
        "medusa.serverReplicas: input should be a valid integer, unable to parse string as an integer",
    ),
    (
        {"analysis": json.dumps({"windowSeconds": 5, "intervalSeconds": 10})},
        "analysis.intervalSeconds: must be at most analysis.windowSeconds (one look at the traffic per interval)",
    ),
    (
        {"activeColor": None},
        "activeColor: required; set it with `pulumi config set activeColor blue` (blue or green)",
    ),
    ({"activeColor": "purple"}, "activeColor: must be 'blue' or 'green', got 'purple'"),
    (
        {"activeColor": "green"},
        "greenImage: required because activeColor is green; set it with "
        "`pulumi config set greenImage registry/app:tag` (or build it from an app "
        "directory: `pulumi config set --path greenBuild.context ./app`)",
    ),
    (
        {"blueBuild": '{"context": "examples/medusa-app"}'},
        "blueBuild: set together with blueImage; keep one (`pulumi config rm blueBuild` or "
        "`pulumi config rm blueImage`)",
    ),
    (
        {"greenBuild": '{"context": "examples/medusa-app"}'},
        "greenBuild: only the color being released (activeColor) is built; pin green to the image it "
        "was built as: `pulumi config set greenImage <stack output imageRefs.green>` and "
        "`pulumi config rm greenBuild` (`bin/bluegreen release` does this)",
    ),
    (
        {"greenBuild": '"examples/medusa-app"'},
        "greenBuild: must be an object (set it with --path, e.g. `pulumi config set --path greenBuild.name value`)",
    ),
    (
        {"activeColor": "green", "greenBuild": '{"context": "app", "args": {"NODE-IMAGE": "x"}}'},
        "greenBuild.args.NODE-IMAGE: is not a valid name (it must match ^[A-Za-z_][A-Za-z0-9_]*$)",
    ),
    (
        {"activeColor": "green", "greenBuild": '{"context": "app", "args": {"NPM_TOKEN": "x"}}'},
        "greenBuild.args.NPM_TOKEN: looks like a secret, but build args reach the docker command line and the "
        "image history; pass it as a BuildKit secret file instead "
        "(`pulumi config set --path greenBuild.secretFiles.<id> /path/to/file`)",
    ),
    (
        {"blueImage": "shop/medusa"},
        "blueImage: 'shop/medusa' has no tag or digest; pin a release, e.g. "
        "'shop/medusa:1.4.2' or 'shop/medusa@sha256:<digest>'",
    ),
    (
        {"blueImage": "shop/medusa:latest"},
        "blueImage: 'shop/medusa:latest' uses the floating tag 'latest', which makes rollback "
        "from history impossible; pin a release tag or digest",
    ),
    (
        {"blueImage": "Shop/Medusa:1"},
        "blueImage: 'Shop/Medusa:1' is not a valid image reference (name[:tag][@sha256:digest])",
    ),
    (
        {"domain": "https://shop.example.com/"},
        "domain: 'https://shop.example.com/' is not a valid host name (lowercase letters, digits "
        "and hyphens in dot-separated labels, no scheme, port or path); did you mean 'shop.example.com'?",
    ),
    (
        {"redisPassword": "'hunter2hunter2'"},
        "redisPassword: is wrapped in quotes, which would become part of the value (the seed "
        "system's quote bug); set it without the surrounding quotes",
    ),
    (
        {"postgresPassword": "short"},
        "postgresPassword: is shorter than 12 characters; use a longer random value",
    ),
    (
        {"jwtSecret": "line\nbreak" + "x" * 40},
        "jwtSecret: contains a control character or line break; remove it",
    ),
    (
        {"database": json.dumps({"user": "bluegreen_admin"})},
        "database.user: 'bluegreen_admin' is a role the program keeps for itself in the bundled Postgres "
        "(the superuser it maintains the database with); choose another name, e.g. medusa",
    ),
    (
        {"database": json.dumps({"mode": "external"})},
        "databaseUrl: required because database.mode is external; set it with "
        "`pulumi config set --secret databaseUrl postgres://user:pass@host:5432/db`",
    ),
    (
        {"database": json.dumps({"mode": "external"}), "databaseUrl": "postgres://u:p@db:5432/x?ssl_mode=require"},
        "databaseUrl: uses 'ssl_mode'; the Postgres driver reads 'sslmode'",
    ),
    (
        {"redis": json.dumps({"mode": "external"}), "redisUrl": "redis://redis:6379/0?password=abc"},
        "redisUrl: carries the password as '?password=', which Redis clients ignore; put it in "
        "the user info: redis://default:<percent-encoded password>@host:6379/0",
    ),
    (
        {"tls": json.dumps({"enabled": True, "certPath": "/etc/ssl/shop.pem"})},
        "tls: certPath and keyPath go together (files on the Docker host); set both, or neither to "
        "get certificates from tls.acme",
    ),
    (
        {"tls": json.dumps({"enabled": True}), "domain": "localhost"},
        "domain: 'localhost' cannot get an ACME certificate (the CA needs a DNS name that points at the "
        "Docker host); set the real domain, or tls.certPath and tls.keyPath",
    ),
    (
        {"tls": json.dumps({"enabled": True}), "router": json.dumps({"httpPort": 8080})},
        "router.httpPort: 8080, but ACME's HTTP-01 challenge always comes to port 80; publish the router "
        "on 80 or bring your own certificate (tls.certPath, tls.keyPath)",
    ),
    (
        {"tls": json.dumps({"enabled": True, "acme": {"email": "not-an-email"}})},
        "tls.acme.email: 'not-an-email' is not an email address (e.g. ops@shop.example.com)",
    ),
    (
        {"router": json.dumps({"httpPort": 9080})},
        "router.previewPort: port 9080 is already used by router.httpPort; choose another",
    ),
    (
        {"router": json.dumps({"httpPort": 70000})},
        "router.httpPort: input should be less than or equal to 65535",
    ),
    (
        {"router": json.dumps({"bindAddress": "localhost"})},
        "router.bindAddress: 'localhost' is not an IP address (e.g. 0.0.0.0 or 127.0.0.1)",
    ),
    (
        {"router": json.dumps({"previewBindAddress": "0.0.0.0"})},
        "previewToken: required because router.previewBindAddress is not loopback, so the idle "
        "color would be public; set it with `pulumi config set --secret previewToken <random>`",
    ),
    (
        {"activeColour": "blue"},
        "activeColour: unknown config key; did you mean 'activeColor'?",
    ),
    (
        {"otherColor": "paused"},
        "otherColor: must be 'warm' or 'stopped', got 'paused'",
    ),
    (
        {"medusa": json.dumps({"storeCors": "https://shop.example.com/,https://b.example.com"})},
        "medusa.storeCors[0]: 'https://shop.example.com/' is not an origin; write "
        "scheme://host[:port] with no path or trailing slash, e.g. 'https://shop.example.com'",
    ),
    (
        {"medusa": json.dumps({"env": {"SHOP_API_KEY": "sk_live_x"}})},
        "medusa.env.SHOP_API_KEY: looks like a secret but medusa.env is stored in plain text; "
        "move it to extraSecretEnv (`pulumi config set --secret --path "
        "extraSecretEnv.SHOP_API_KEY ...`)",
    ),
    # Names the program sets from a setting of its own: the env entry would silently win over
    # the setting (the bug this table now guards), so it is refused and the setting named.
    (
        {"medusa": json.dumps({"env": {"S3_BUCKET": "other-bucket"}})},
        "medusa.env.S3_BUCKET: set by the program from s3.bucket; set s3.bucket instead and remove it from medusa.env",
    ),
    (
        {"medusa": json.dumps({"env": {"STRIPE_API_KEY": "sk_live_x"}})},
        "medusa.env.STRIPE_API_KEY: set by the program from stripeApiKey; set stripeApiKey instead and remove it "
        "from medusa.env",
    ),
    (
        {"extraSecretEnv": json.dumps({"STRIPE_API_KEY": "sk_live_xxxxxxxx"})},
        "extraSecretEnv.STRIPE_API_KEY: set by the program from stripeApiKey; set stripeApiKey instead and remove "
        "it from extraSecretEnv",
    ),
    (
        {"medusa": json.dumps({"env": {"DATABASE_URL": "postgres://x"}})},
        "medusa.env.DATABASE_URL: set by the program from its own settings; remove it from medusa.env",
    ),
    (
        {"healthGate": json.dumps({"timeoutSeconds": 10, "deadlineSeconds": 5})},
        "healthGate.deadlineSeconds: must be at least healthGate.timeoutSeconds",
    ),
    (
        {"timeouts": json.dumps({"migrateSeconds": 0})},
        "timeouts.migrateSeconds: input should be greater than or equal to 10",
    ),
    (
        {"releases": json.dumps({"keep": 0})},
        "releases.keep: must be at least 1 (the number of earlier releases whose images stay on the "
        "Docker host for `bin/bluegreen rollback`), got 0",
    ),
    (
        {"releases": json.dumps({"keep": "all"})},
        "releases.keep: input should be a valid integer, unable to parse string as an integer",
    ),
    (
        {"router": "8080"},
        "router: must be an object (set it with --path, e.g. `pulumi config set --path router.name value`)",
    ),
    (
        {"dockerHost": "docker.example.com"},
        "dockerHost: 'docker.example.com' is not a Docker engine address; write unix:///var/run/docker.sock, "
        "ssh://user@host or tcp://host:2376 (a trailing newline or space counts)",
    ),
    # ---- What a user gets wrong with `pulumi config set`, key by key (the audit's probe and more).
    # Python's `$` matches before a trailing newline: every pattern must hold to the very end.
    (
        {"blueImage": "shop/medusa:1.0\n"},
        "blueImage: 'shop/medusa:1.0\\n' is not a valid image reference (name[:tag][@sha256:digest])",
    ),
    (
        {"domain": "API.Shop.Example.com."},
        "domain: 'API.Shop.Example.com.' is not a valid host name (lowercase letters, digits and hyphens in "
        "dot-separated labels, no scheme, port or path); did you mean 'api.shop.example.com'?",
    ),
    (
        {"domain": "api.shop.example.com:8443"},
        "domain: 'api.shop.example.com:8443' is not a valid host name (lowercase letters, digits and hyphens in "
        "dot-separated labels, no scheme, port or path); did you mean 'api.shop.example.com'?",
    ),
    (
        {"domain": "api.shop.example.com\n"},
        "domain: 'api.shop.example.com\\n' is not a valid host name (lowercase letters, digits and hyphens in "
        "dot-separated labels, no scheme, port or path); did you mean 'api.shop.example.com'?",
    ),
    # router.probeHost is a host: as a URL it once passed, and every release failed at the gate
    # after its backup and migration had run.
    (
        {"router": json.dumps({"probeHost": "https://api.example.com"})},
        "router.probeHost: 'https://api.example.com' is not a host name or IP address (no scheme, port or path: "
        "the port is router.previewPort), e.g. 127.0.0.1 or api.shop.example.com; did you mean 'api.example.com'?",
    ),
    (
        {"router": json.dumps({"probeHost": "api.example.com:9080"})},
        "router.probeHost: 'api.example.com:9080' is not a host name or IP address (no scheme, port or path: "
        "the port is router.previewPort), e.g. 127.0.0.1 or api.shop.example.com; did you mean 'api.example.com'?",
    ),
    (
        {"router": json.dumps({"probeHost": "api.example.com/preview"})},
        "router.probeHost: 'api.example.com/preview' is not a host name or IP address (no scheme, port or path: "
        "the port is router.previewPort), e.g. 127.0.0.1 or api.shop.example.com; did you mean 'api.example.com'?",
    ),
    # dockerHost: what Docker itself would refuse later, or never reach.
    (
        {"dockerHost": "ssh://deploy@"},
        "dockerHost: 'ssh://deploy@': ssh:// takes [user@]host[:port] and nothing after it (Docker refuses a "
        "path: the remote socket is found by `docker system dial-stdio`), e.g. ssh://deploy@203.0.113.7",
    ),
    (
        {"dockerHost": "ssh://deploy@203.0.113.7/var/run/docker.sock"},
        "dockerHost: 'ssh://deploy@203.0.113.7/var/run/docker.sock': ssh:// takes [user@]host[:port] and nothing "
        "after it (Docker refuses a path: the remote socket is found by `docker system dial-stdio`), "
        "e.g. ssh://deploy@203.0.113.7",
    ),
    (
        {"dockerHost": "ssh://deploy:hunter2-ssh@203.0.113.7"},
        "dockerHost: carries a password (user:password@), which Docker never reads and the stack stores in plain "
        "text; ssh:// logs in with your ssh key or agent: ssh://user@host",
    ),
    (
        {"dockerHost": "unix://var/run/docker.sock"},
        "dockerHost: 'unix://var/run/docker.sock': a unix socket takes an absolute path, three slashes in all: "
        "unix:///var/run/docker.sock",
    ),
    (
        {"dockerHost": "ssh://deploy@203.0.113.7\n"},
        "dockerHost: 'ssh://deploy@203.0.113.7\\n' is not a Docker engine address; write "
        "unix:///var/run/docker.sock, ssh://user@host or tcp://host:2376 (a trailing newline or space counts)",
    ),
    # Keys Pulumi users expect to work, in a namespace this program does not read.
    (
        {"docker:host": "ssh://deploy@203.0.113.7"},
        "docker:host: not read: this program makes its own Docker provider from dockerHost; "
        "`pulumi config rm docker:host && pulumi config set dockerHost ssh://user@host`",
    ),
    (
        {"docker:registryAuth": '[{"address": "ghcr.io"}]'},
        "docker:registryAuth: not read: this program makes its own Docker provider from dockerHost and takes "
        "no other docker:* setting; remove it (`pulumi config rm docker:registryAuth`)",
    ),
    (
        {"medusa:domain": "api.shop.example.com"},
        "medusa:domain: set in the namespace 'medusa', which this program does not read; "
        "`pulumi config rm medusa:domain`, then `pulumi config set domain ...` (no namespace)",
    ),
    # A misspelt nested key gets the closest key of its own section.
    (
        {"router": json.dumps({"httpport": 8080})},
        "router.httpport: unknown setting; did you mean 'router.httpPort'? "
        "(`pulumi config rm --path router.httpport`, then set `router.httpPort`)",
    ),
    (
        {"tls": json.dumps({"enabled": True, "acme": {"emial": "ops@shop.example.com"}})},
        "tls.acme.emial: unknown setting; did you mean 'tls.acme.email'? "
        "(`pulumi config rm --path tls.acme.emial`, then set `tls.acme.email`)",
    ),
    (
        {"healthGate": json.dumps({"deadline": 30})},
        "healthGate.deadline: unknown setting; did you mean 'healthGate.deadlineSeconds'? "
        "(`pulumi config rm --path healthGate.deadline`, then set `healthGate.deadlineSeconds`)",
    ),
    (
        {"medusa": json.dumps({"storeCORS": ["https://shop.example.com"]})},
        "medusa.storeCORS: unknown setting; did you mean 'medusa.storeCors'? "
        "(`pulumi config rm --path medusa.storeCORS`, then set `medusa.storeCors`)",
    ),
    # Paths on the Docker host end up in mounts and the router's nginx config.
    (
        {"tls": json.dumps({"enabled": True, "certPath": "certs/shop.pem", "keyPath": "/etc/ssl/shop.key"})},
        "tls.certPath: 'certs/shop.pem' is not an absolute path; give the full path of the file on the Docker "
        "host, e.g. /etc/ssl/shop/fullchain.pem (`~` and relative paths are not expanded)",
    ),
    (
        {"tls": json.dumps({"enabled": True, "certPath": "/etc/ssl/my cert.pem", "keyPath": "/etc/ssl/shop.key"})},
        "tls.certPath: '/etc/ssl/my cert.pem' is not a plain file path (letters, digits and . _ @ + = , / - only: "
        "no spaces, quotes, `:`, `;` or `$`, and no trailing /); move or link the file to such a path",
    ),
    (
        {"tls": json.dumps({"enabled": True, "certPath": "/etc/ssl/shop.pem", "keyPath": "/etc/ssl/../shop.key"})},
        "tls.keyPath: '/etc/ssl/../shop.key' contains '.' or '..'; give the path without them",
    ),
    (
        {"tls": json.dumps({"enabled": True, "acme": {"caCertificatesPath": "~/pebble.pem"}})},
        "tls.acme.caCertificatesPath: '~/pebble.pem' is not an absolute path; give the full path of the file on "
        "the Docker host, e.g. /etc/ssl/shop/fullchain.pem (`~` and relative paths are not expanded)",
    ),
    (
        {"tls": json.dumps({"enabled": True, "certPath": "/etc/ssl/shop.pem", "keyPath": "/etc/ssl/shop.pem"})},
        "tls: certPath and keyPath name the same file; keyPath is the private key's own file",
    ),
    (
        {"tls": json.dumps({"certPath": "/etc/ssl/shop.pem", "keyPath": "/etc/ssl/shop.key"})},
        "tls: certPath and keyPath are set but enabled is false, so the site would be served over plain HTTP; "
        "turn TLS on (`pulumi config set --path tls.enabled true`) or remove them "
        "(`pulumi config rm --path tls.certPath && pulumi config rm --path tls.keyPath`)",
    ),
    (
        {"tls": json.dumps({"enabled": True, "acme": {"renewDays": 90}})},
        "tls.acme.renewDays: must be less than 90, got 90: a certificate lasts 90 days, so it would be renewed on "
        "every check until the CA's rate limit refuses it; keep the default 30",
    ),
    # Values that end up in a URL, an env file or a command line.
    (
        {"healthGate": json.dumps({"path": "/health#ready"})},
        "healthGate.path: '/health#ready' contains a character a URL path cannot carry as it is (space, quote, "
        "`$`, `#` (a fragment is never sent), `<>`, `{}` or a control character); percent-encode it or remove it",
    ),
    (
        {"healthGate": json.dumps({"path": "http://127.0.0.1/health"})},
        "healthGate.path: 'http://127.0.0.1/health' is not a path; write the path only, starting with /, "
        "e.g. /health",
    ),
    (
        {"healthGate": json.dumps({"expectBody": "OK\n"})},
        "healthGate.expectBody: contains a line break or control character; remove it",
    ),
    (
        {"medusa": json.dumps({"backendUrl": "https://api.shop.example.com/\"x"})},
        "medusa.backendUrl: 'https://api.shop.example.com/\"x' contains a character a URL cannot carry as it is "
        "(space, quote, `$`, `\\`, `<>`, `{}`, `|`, `^` or a backtick); percent-encode it",
    ),
    (
        {"s3": json.dumps({"endpoint": "https://minio:secret-minio-pass@minio.example.com"})},
        "s3.endpoint: carries a password in the URL (user:password@); this setting is stored in plain text, "
        "so remove the credentials from it",
    ),
    (
        {"s3": json.dumps({"bucket": "s3://shop-media"})},
        "s3.bucket: 's3://shop-media' is not a bucket name (3-63 lowercase letters, digits, dots and hyphens; "
        "no s3:// or path: the endpoint is a key of its own); did you mean 'shop-media'?",
    ),
    (
        {"medusa": json.dumps({"env": {"FEATURE_X": "on\noff"}})},
        "medusa.env.FEATURE_X: contains a line break or control character; remove it",
    ),
    (
        {"medusa": json.dumps({"env": {"FEATURE_X": "on\u0000"}})},
        "medusa.env.FEATURE_X: contains a line break or control character; remove it",
    ),
    (
        {"medusa": json.dumps({"env": {"CACHE_URL": "redis://default:secret-cache-pass@cache:6379"}})},
        "medusa.env.CACHE_URL: carries a password in a URL (user:password@) but medusa.env is stored in plain "
        "text; move it to extraSecretEnv (`pulumi config set --secret --path extraSecretEnv.<name> ...`)",
    ),
    (
        {"medusa": json.dumps({"migrateCommand": ["", "medusa", "db:migrate"]})},
        "medusa.migrateCommand: starts with an empty program name; give the program first, e.g. "
        "[\"npx\", \"medusa\", \"db:migrate\"]",
    ),
    (
        {"medusa": json.dumps({"migrateCommand": ["npx", "medusa", "db:migrate\n"]})},
        "medusa.migrateCommand[2]: contains a line break or control character; remove it",
    ),
    # "Secret-looking names are refused" (README): one list, for medusa.env and build args alike.
    *[
        (
            {"medusa": json.dumps({"env": {name: "x"}})},
            f"medusa.env.{name}: looks like a secret but medusa.env is stored in plain text; move it to "
            f"extraSecretEnv (`pulumi config set --secret --path extraSecretEnv.{name} ...`)",
        )
        for name in ("SENTRY_DSN", "NPM_AUTH", "ALGOLIA_ADMIN_KEY", "NPM_TOKEN", "SMTP_PASS", "DB_CONNECTION_STRING")
    ],
    *[
        (
            {"activeColor": "green", "greenBuild": json.dumps({"context": "examples/medusa-app", "args": {name: "x"}})},
            f"greenBuild.args.{name}: looks like a secret, but build args reach the docker command line and the "
            "image history; pass it as a BuildKit secret file instead "
            "(`pulumi config set --path greenBuild.secretFiles.<id> /path/to/file`)",
        )
        for name in ("NPM_AUTH", "SENTRY_DSN", "SIGNING_KEY")
    ],
    (
        {"activeColor": "green", "greenBuild": json.dumps(
            {"context": "examples/medusa-app", "args": {"NPM_REGISTRY": "https://ci:npm-pass-1@npm.example.com/"}})},
        "greenBuild.args.NPM_REGISTRY: carries a password in a URL, but build args reach the docker command line "
        "and the image history; pass it as a BuildKit secret file instead "
        "(`pulumi config set --path greenBuild.secretFiles.<id> /path/to/file`)",
    ),
    (
        {"activeColor": "green", "greenBuild": json.dumps(
            {"context": "examples/medusa-app", "args": {"NODE_ENV": "production\n"}})},
        "greenBuild.args.NODE_ENV: contains a line break or control character; remove it",
    ),
    # The build reads its context and secret files on this machine: checked before anything runs.
    (
        {"activeColor": "green", "greenBuild": json.dumps({"context": "apps/shop"})},
        f"greenBuild.context: {PROJECT_DIR / 'apps/shop'} does not exist on this machine; point it at the app "
        "directory: `pulumi config set --path greenBuild.context ./app` (relative to the project directory, "
        "where Pulumi.yaml is)",
    ),
    (
        {"activeColor": "green", "greenBuild": json.dumps({"context": "README.md"})},
        f"greenBuild.context: {PROJECT_DIR / 'README.md'} is a file, not a directory; point it at the directory "
        "that holds the Dockerfile: `pulumi config set --path greenBuild.context ./app` (relative to the project "
        "directory, where Pulumi.yaml is)",
    ),
    (
        {"activeColor": "green", "greenBuild": json.dumps({"context": "docs"})},
        f"greenBuild.context: {PROJECT_DIR / 'docs'} has no Dockerfile (the build always uses ./Dockerfile in the "
        "context); add one or point it at the app directory: `pulumi config set --path greenBuild.context ./app` "
        "(relative to the project directory, where Pulumi.yaml is)",
    ),
    (
        {"activeColor": "green", "greenBuild": json.dumps(
            {"context": "examples/medusa-app", "secretFiles": {"npmrc": "/nonexistent/.npmrc"}})},
        "greenBuild.secretFiles.npmrc: /nonexistent/.npmrc does not exist on this machine (the build reads it "
        "here); `pulumi config set --path greenBuild.secretFiles.npmrc /path/to/file`",
    ),
    (
        {"activeColor": "green", "greenBuild": json.dumps(
            {"context": "examples/medusa-app", "secretFiles": {"npmrc": "~/.npmrc"}})},
        "greenBuild.secretFiles.npmrc: `~` is not expanded; give the full path: "
        "`pulumi config set --path greenBuild.secretFiles.npmrc /path/to/file`",
    ),
    # One way in (rule 10b) and no setting silently ignored.
    (
        {"extraSecretEnv": json.dumps({"FEATURE_X": "on-but-secret"})},
        "extraSecretEnv.FEATURE_X: also set in medusa.env; keep one (`pulumi config rm --path medusa.env.FEATURE_X` "
        "or `pulumi config rm --path extraSecretEnv.FEATURE_X`)",
    ),
    (
        {"redisUrl": "redis://default:pass@cache.example.com:6379/0"},
        "redisUrl: set, but redis.mode is bundled, so it would be ignored; remove it (`pulumi config rm redisUrl`) "
        "or set redis.mode to external",
    ),
]

# Secrets as a copy-paste brings them: each refused by what is wrong, never by its value.
SECRET_BAD_CONFIGS = [
    ({"jwtSecret": "j" * 40 + "\n"}, "jwtSecret: contains a control character or line break; remove it"),
    (
        {"cookieSecret": "c" * 40 + " "},
        "cookieSecret: starts or ends with whitespace (a copy-paste?), which would become part of the value; "
        "set it again without it",
    ),
    (
        {"meilisearchMasterKey": " meili-master-key-value-1"},
        "meilisearchMasterKey: starts or ends with whitespace (a copy-paste?), which would become part of the "
        "value; set it again without it",
    ),
    (
        {"database": json.dumps({"mode": "external"}), "databaseUrl": "postgres://u:db-pass-77@db:5432/x\n"},
        "databaseUrl: contains a control character or line break; remove it",
    ),
    (
        {"database": json.dumps({"mode": "external"}), "databaseUrl": "'postgres://u:db-pass-77@db:5432/x'"},
        "databaseUrl: is wrapped in quotes, which would become part of the value (the seed system's quote bug); "
        "set it without the surrounding quotes",
    ),
    (
        {"redis": json.dumps({"mode": "external"}), "redisUrl": "redis://default:redis-pass-77@r:6379/0 "},
        "redisUrl: starts or ends with whitespace (a copy-paste?), which would become part of the value; "
        "set it again without it",
    ),
    (
        {"extraSecretEnv": json.dumps({"SENTRY_DSN": "https://sentry-key-77@o1.ingest.sentry.io/1\n"})},
        "extraSecretEnv.SENTRY_DSN: contains a control character or line break; remove it",
    ),
    (
        {"extraSecretEnv": json.dumps({"SENTRY_DSN": "'https://sentry-key-77@o1.ingest.sentry.io/1'"})},
        "extraSecretEnv.SENTRY_DSN: is wrapped in quotes, which would become part of the value (the seed "
        "system's quote bug); set it without the surrounding quotes",
    ),
    (
        {"extraSecretEnv": json.dumps({"SENTRY_DSN": " https://sentry-key-77@o1.ingest.sentry.io/1"})},
        "extraSecretEnv.SENTRY_DSN: starts or ends with whitespace (a copy-paste?), which would become part of "
        "the value; set it again without it",
    ),
    (
        {"extraSecretEnv": json.dumps({"SENTRY_DSN": "sentry-key-77\u0000"})},
        "extraSecretEnv.SENTRY_DSN: contains a control character or line break; remove it",
    ),
    # nginx compares the preview token inside its config: once a traceback after 20 registrations.
    (
        {"previewToken": "a-long-random-preview-token!"},
        "previewToken: may only contain letters, digits and . _ ~ - (nginx compares it inside its config); "
        "set a random one: `pulumi config set --secret previewToken $(openssl rand -hex 24)`",
    ),
    (
        {"extraSecretEnv": json.dumps({"SENTRY_DSN": ""})},
        "extraSecretEnv.SENTRY_DSN: is empty; set the value, or remove the key (`pulumi config rm ...`)",
    ),
    # The router's upstream blocks use `server ... resolve` (nginx >= 1.27.3): an older image
    # would fail nginx -t at the first apply, after the data services were already created.
    (
        {"images": json.dumps({"nginx": "nginx:1.26-alpine"})},
        "images.nginx: 'nginx:1.26-alpine' is older than the router needs: nginx >= 1.27.3 (its upstream "
        "blocks re-resolve a color's address with `server ... resolve`); use nginx:1.28-bookworm or newer",
    ),
]


COPY_TO = {"endpoint": "https://s3.eu-central-1.amazonaws.com", "bucket": "shop-backups", "region": "eu-central-1"}
COPY_KEYS = {"backupsAccessKeyId": "AKIAEXAMPLEKEY01", "backupsSecretAccessKey": "an-example-secret-access-key"}

BAD_CONFIGS += [
    (
        {"backups": json.dumps({"copyTo": {**COPY_TO, "endpoint": "https://s3.amazonaws.com/shop-backups"}}),
         **COPY_KEYS},
        "backups.copyTo.endpoint: has a path (/shop-backups); give the service's address only, e.g. "
        "https://s3.amazonaws.com; if 'shop-backups' is the bucket, set it as backups.copyTo.bucket",
    ),
    (
        {"backups": json.dumps({"copyTo": {**COPY_TO, "prefix": "/shop/"}}), **COPY_KEYS},
        "backups.copyTo.prefix: '/shop/' is not a key prefix: path segments of letters, digits, `.`, `_` and `-` "
        "joined by `/`, with no slash at either end (e.g. shop/backups)",
    ),
    (
        {"backups": json.dumps({"copyTo": COPY_TO}), "backupsAccessKeyId": COPY_KEYS["backupsAccessKeyId"]},
        "backupsSecretAccessKey: required because backups.copyTo is set; set it with "
        "`pulumi config set --secret backupsSecretAccessKey`, which reads the value from stdin (a prompt, or `< file`)",
    ),
    (
        COPY_KEYS,
        "backupsAccessKeyId: set, but backups.copyTo is not, so it would be ignored; remove it "
        "(`pulumi config rm backupsAccessKeyId`) or set backups.copyTo.endpoint and backups.copyTo.bucket",
    ),
    (
        {"backups": json.dumps({"enabled": False, "copyTo": COPY_TO}), **COPY_KEYS},
        "backups.copyTo: set, but backups.enabled is false, so there is nothing to copy; remove it "
        "(`pulumi config rm --path backups.copyTo`) or set backups.enabled true",
    ),
]


def _apply(overrides):
    raw = config()
    for key, value in overrides.items():
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    return raw


@pytest.mark.parametrize(("overrides", "expected"), BAD_CONFIGS, ids=[e[:40] for _, e in BAD_CONFIGS])
def test_bad_config_names_key_problem_and_fix(overrides, expected):
    with pytest.raises(SettingsError) as caught:
        load_settings(_apply(overrides))
    assert expected in caught.value.problems, caught.value.problems


@pytest.mark.parametrize("overrides", [
    {"s3": json.dumps({"endpoint": "https://minio:secret-minio-pass@minio example.com"})},
    {"dockerHost": "ssh://deploy:secret-minio-pass@203.0.113.7/x"},
    {"medusa": json.dumps({"env": {"CACHE_URL": "redis://default:secret-minio-pass@cache:6379\n"}})},
])
def test_a_password_inside_a_plain_value_is_never_echoed(overrides):
    with pytest.raises(SettingsError) as caught:
        load_settings(_apply(overrides))
    assert "secret-minio-pass" not in str(caught.value)


def test_errors_never_echo_a_secret_value():
    secret = "'super-secret-value-42'"
    with pytest.raises(SettingsError) as caught:
        load_settings(config(redisPassword=secret, cookieSecret="tiny-secret-value"))
    assert "super-secret-value-42" not in str(caught.value)
    assert "tiny-secret-value" not in str(caught.value)


def test_all_problems_are_reported_at_once():
    with pytest.raises(SettingsError) as caught:
        load_settings(config(activeColor="purple", blueImage="x", domain="bad domain"))
    assert len(caught.value.problems) == 3


def test_valid_config_and_defaults():
    settings = load_settings(config())
    assert settings.active_color == "blue"
    assert settings.other_color == "warm"
    assert settings.router.preview_bind_address == "127.0.0.1"
    assert settings.medusa.store_cors == ["https://shop.example.com"]
    assert settings.public_url == "http://api.shop.example.com"
    assert settings.releases.keep == 3


def test_seed_style_comma_separated_cors_is_accepted():
    settings = load_settings(config(medusa=json.dumps({"storeCors": "https://a.example.com, https://b.example.com"})))
    assert settings.medusa.store_cors == ["https://a.example.com", "https://b.example.com"]


def test_empty_value_clears_a_key():
    settings = load_settings(config(greenImage=""))
    assert settings.green_image is None




def _stack_file(name):
    import yaml

    from core.naming import PROJECT

    path = Path(__file__).resolve().parents[3] / f"Pulumi.{name}.yaml"
    config = yaml.safe_load(path.read_text())["config"]
    return {
        key.removeprefix(f"{PROJECT}:"): value if isinstance(value, str) else json.dumps(value)
        for key, value in config.items()
    }


def test_shipped_local_stack_is_valid():
    settings = load_settings(_stack_file("local"))
    assert settings.router.bind_address == "127.0.0.1"
    assert settings.meilisearch.enabled is False


def test_shipped_production_stack_loads_and_publishes_no_preview_route():
    settings = load_settings(_stack_file("production"))
    assert ipaddress.ip_address(settings.router.preview_bind_address).is_loopback
    assert settings.docker_host.startswith("ssh://") and settings.tls.enabled


def _secret_values(overrides):
    for key, value in overrides.items():
        if key == "extraSecretEnv":
            yield from (v for v in json.loads(value).values() if v)
        elif key in SECRET_KEYS and value:
            yield value


@pytest.mark.parametrize(("overrides", "expected"), SECRET_BAD_CONFIGS, ids=[e[:40] for _, e in SECRET_BAD_CONFIGS])
def test_bad_secret_names_key_problem_and_fix_never_its_value(overrides, expected):
    with pytest.raises(SettingsError) as caught:
        load_settings(_apply(overrides))
    assert expected in caught.value.problems, caught.value.problems
    for value in _secret_values(overrides):
        assert value.strip().strip("'") not in str(caught.value)


# Everything a stack sets with --secret, as PULUMI_CONFIG_SECRET_KEYS lists it.
ALL_SECRET = frozenset(SECRET_KEYS)


def test_a_secret_set_without_secret_is_refused_without_its_value():
    raw = config(previewToken="a-long-random-preview-token")
    with pytest.raises(SettingsError) as caught:
        load_settings(raw, secret_keys=ALL_SECRET - {"previewToken", "jwtSecret"})
    assert caught.value.problems == [
        "jwtSecret: is a secret but was set without --secret, so it is stored in plain text in the stack's config "
        "file; set it again with `pulumi config set --secret jwtSecret <value>` (and rotate it if that file was "
        "shared)",
        "previewToken: is a secret but was set without --secret, so it is stored in plain text in the stack's "
        "config file; set it again with `pulumi config set --secret previewToken <value>` (and rotate it if that "
        "file was shared)",
    ]
    assert "a-long-random-preview-token" not in str(caught.value) and "j" * 40 not in str(caught.value)


def test_extra_secret_env_set_without_secret_names_each_entry_never_a_value():
    raw = config(extraSecretEnv=json.dumps({"SENTRY_DSN": "https://sentry-key-77@o1.ingest.sentry.io/1",
                                            "ALGOLIA_ADMIN_KEY": "algolia-key-77"}))
    with pytest.raises(SettingsError) as caught:
        load_settings(raw, secret_keys=ALL_SECRET - {"extraSecretEnv"})
    assert caught.value.problems == [
        "extraSecretEnv: is a secret but was set without --secret, so it is stored in plain text in the stack's "
        "config file; set it again with `pulumi config set --secret --path extraSecretEnv.ALGOLIA_ADMIN_KEY "
        "<value>` and `pulumi config set --secret --path extraSecretEnv.SENTRY_DSN <value>` (and rotate it if "
        "that file was shared)",
    ]
    assert "sentry-key-77" not in str(caught.value) and "algolia-key-77" not in str(caught.value)


def test_secrets_set_with_secret_pass_and_unknown_secret_keys_are_not_checked():
    assert load_settings(config(), secret_keys=ALL_SECRET).active_color == "blue"
    assert load_settings(config(), secret_keys=None).active_color == "blue"  # the unit tests' own configs
    # Only the keys the stack sets count: an unset secret is not "set without --secret".
    assert load_settings(config(), secret_keys={"jwtSecret", "cookieSecret", "postgresPassword", "redisPassword",
                                                "stripeApiKey"}).active_color == "blue"


def test_other_namespaces_are_left_alone():
    # A provider's or Pulumi's own config, not a key of ours in the wrong place.
    settings = load_settings(config(**{"aws:region": "eu-west-1", "pulumi:template": "python"}))
    assert settings.domain == "api.shop.example.com"


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("SENTRY_DSN", True), ("NPM_AUTH", True), ("_AUTH", True), ("BASIC_AUTH", True), ("NPM_TOKEN", True),
        ("NPMTOKEN", True), ("ALGOLIA_ADMIN_KEY", True), ("STRIPE_KEY", True), ("SIGNING_KEY", True),
        ("SMTP_PASS", True), ("DB_PWD", True), ("GPG_PASSPHRASE", True), ("AWS_SECRET_ACCESS_KEY", True),
        ("shop_api_key", True), ("MONGO_CONNECTION_STRING", True), ("PRIVATE_KEY_PEM", True),
        # Named like a secret's neighbour, public by design, or not a secret at all.
        ("AWS_ACCESS_KEY_ID", False), ("SSH_KEY_PATH", False), ("KEY_NAME", False), ("PUBLIC_KEY", False),
        ("MEDUSA_PUBLISHABLE_KEY", False), ("AUTH_URL", False), ("AUTHOR", False), ("KEYCLOAK_REALM", False),
        ("PASSTHROUGH", False), ("FEATURE_X", False), ("NODE_ENV", False), ("MONKEY_MODE", False),
    ],
)
def test_secret_looking_names(name, secret):
    assert looks_like_a_secret(name) is secret


def test_mistakes_judged_valid_are_accepted():
    settings = load_settings(config(
        router=json.dumps({"probeHost": "::1"}),
        medusa=json.dumps({"env": {"PORT_X": 9000, "FLAG": True, "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
                                   "MEDUSA_PUBLISHABLE_KEY": "pk_123"},
                           "migrateCommand": ["npx", "medusa", "db:migrate", ""]}),
        extraSecretEnv=json.dumps({"PIN_CODE": 1234}),
        healthGate=json.dumps({"expectBody": ""}),  # any body
        postgresPassword="correct horse battery staple",  # inner spaces are part of a passphrase
        stripeApiKey="sk_live_abcdefgh'",  # one quote is a character, not a wrapping
        dockerHost="tcp://10.0.0.5:2376",  # README: tcp:// (TLS from DOCKER_TLS_VERIFY/DOCKER_CERT_PATH)
        tls=json.dumps({"enabled": "yes", "certPath": "/etc/ssl/shop/fullchain.pem",
                        "keyPath": "/etc/ssl/shop/privkey.pem"}),
        # A line tag names its newest patch (1.27.5 has `resolve`); a private image is the user's call.
        images=json.dumps({"nginx": "nginx:1.27-alpine", "redis": "registry.example.com/redis:7"}),
    ))
    # `pulumi config set --path medusa.env.PORT_X 9000` stores a number: it means its text.
    assert settings.medusa.env["PORT_X"] == "9000" and settings.medusa.env["FLAG"] == "true"
    assert settings.extra_secret_env["PIN_CODE"].get_secret_value() == "1234"
    assert settings.preview_url == "http://[::1]:9080"
    assert settings.tls.enabled is True


def test_https_port_may_repeat_another_port_while_tls_is_off():
    assert load_settings(config(router=json.dumps({"httpsPort": 9080}))).router.https_port == 9080


def test_a_colors_build_adds_to_the_build_defaults_and_wins_on_a_shared_name() -> None:
    raw = {k: v for k, v in config(activeColor="blue").items() if k != "blueImage"}
    raw["buildDefaults"] = json.dumps({"args": {"NODE_IMAGE": "medusa-bg/node:22", "A": "shared"},
                                       "secretFiles": {"ca": "/etc/hostname"}, "target": "runtime"})
    raw["blueBuild"] = json.dumps({"context": "examples/medusa-app", "args": {"A": "mine"}})
    build = load_settings(raw).build_for("blue")
    assert build is not None
    assert (build.context, build.args, build.secret_files, build.target, build.repository) == (
        "examples/medusa-app", {"NODE_IMAGE": "medusa-bg/node:22", "A": "mine"}, {"ca": "/etc/hostname"}, "runtime",
        None)
    assert load_settings(raw).build_for("green") is None
