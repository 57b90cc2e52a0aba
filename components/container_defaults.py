"""Settings every container of the stack shares."""

# Rotated logs: the seed system's hosts filled their disks with unbounded json logs.
LOG_DRIVER = "json-file"
LOG_OPTS = {"max-size": "10m", "max-file": "3"}


# Medusa images have node but not always curl (node:22-alpine has neither curl nor bash).
MEDUSA_HEALTHCHECK = [
    "CMD",
    "node",
    "-e",
    "fetch('http://127.0.0.1:9000/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))",
]
