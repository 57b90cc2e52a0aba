"""Container names the router, the components and the day-2 verbs must agree on."""

import pytest

from core import naming


def test_the_first_replica_keeps_the_single_servers_name():
    assert naming.server_replica_container("shop", "blue", 1) == naming.server_container("shop", "blue")
    assert naming.server_replica_containers("shop", "green", 3) == [
        "shop-green-server", "shop-green-server-2", "shop-green-server-3",
    ]


@pytest.mark.parametrize("replica", [0, naming.MAX_SERVER_REPLICAS + 1])
def test_a_replica_outside_the_range_has_no_name(replica):
    with pytest.raises(ValueError, match=f"replica {replica} is outside 1..{naming.MAX_SERVER_REPLICAS}"):
        naming.server_replica_container("shop", "blue", replica)


def test_every_replica_name_is_known_without_the_settings():
    names = naming.all_server_containers("shop", "blue")
    assert len(names) == naming.MAX_SERVER_REPLICAS and names[-1] == "shop-blue-server-8"
