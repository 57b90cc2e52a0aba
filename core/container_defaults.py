"""Settings every container of the stack shares."""

from core.naming import MEDUSA_PORT

# Rotated logs: the seed system's hosts filled their disks with unbounded json logs.
LOG_DRIVER = "json-file"
LOG_OPTS = {"max-size": "10m", "max-file": "3"}


# Medusa images have node but not always curl (node:22-alpine has neither curl nor bash).
MEDUSA_HEALTHCHECK = [
    "CMD",
    "node",
    "-e",
    f"fetch('http://127.0.0.1:{MEDUSA_PORT}/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))",
]


def go_duration(seconds: int) -> str:
    """A duration as the Docker provider reads it back (Go's time.Duration format: 2m0s).

    Written any other way ("120s"), every refresh would report the healthcheck as drifted.
    """
    if seconds < 0:
        raise ValueError(f"duration must not be negative: {seconds}")
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def memory_swap_mb(memory_mb: int) -> int:
    """Docker's own default (swap as large as the memory limit), declared so refresh sees no drift."""
    return memory_mb * 2
