"""Old app images do not pile up on the Docker host: one prune per release, after it is done.

Only the released image's repository is looked at (a build's `PREFIX-app` or its
`repository`, or a registry image's repository), never a shared service's, so the engine's
other images are left alone; an idle color in another repository is pruned when it is
released. What is kept and why is in docker_cli.prune_app_images; `releases.keep` says how
many earlier releases stay ready for `bin/bluegreen rollback` without a registry.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pulumi
import pulumi_command as command

from core import docker_cli


def repository_of(ref: str) -> str:
    """The repository of an image ref, spelled as `docker image ls` prints it.

    Docker Hub names are shortened the same way (`docker.io/library/x` is `x`), because the
    reference filter matches that familiar form only.
    """
    name = ref.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last) + last.index(":")]
    for hub in ("docker.io/", "index.docker.io/"):
        if name.startswith(hub):
            name = name.removeprefix(hub).removeprefix("library/")
    return name


def prune_repository(release_ref: str, service_refs: Iterable[str]) -> str | None:
    """The repository to prune, or None when a shared service's image lives in it too."""
    repository = repository_of(release_ref)
    return None if repository in {repository_of(ref) for ref in service_refs} else repository


def prune_old_images(
    name: str,
    *,
    release_ref: str,
    service_refs: Iterable[str],
    keep: int,
    docker_host: str,
    release_image_id: pulumi.Input[str],
    after: Sequence[pulumi.Resource],
) -> command.local.Command | None:
    repository = prune_repository(release_ref, service_refs)
    if repository is None:
        return None
    # Triggered by the released image: once per release (a rollback is one too), never on a no-op up.
    return command.local.Command(
        name,
        create=docker_cli.prune_app_images(repository, release_ref, keep),
        triggers=[release_image_id],
        environment={"DOCKER_HOST": docker_host},
        opts=pulumi.ResourceOptions(depends_on=list(after)),
    )
