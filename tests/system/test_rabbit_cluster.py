"""The pure parts of ``make cluster``'s cluster helper: the node plan never reaches another broker on this
machine, HAProxy checks every node and cuts a dead node's sessions, and ``rabbitmqctl``'s JSON is read."""

from __future__ import annotations

import pytest
from rabbit_cluster import haproxy_cfg, parse_queues, plan_nodes, rabbitmq_conf

pytestmark = pytest.mark.unit


def test_the_plan_names_three_nodes_on_their_own_ports() -> None:
    nodes = plan_nodes()
    assert [(n.name, n.port, n.dist_port) for n in nodes] == [
        ("sp-c1@localhost", 5701, 25701),
        ("sp-c2@localhost", 5702, 25702),
        ("sp-c3@localhost", 5703, 25703),
    ]


@pytest.mark.parametrize("first_port", [5672, 5690, 5698])
def test_a_plan_reaching_another_broker_is_refused(first_port: int) -> None:
    with pytest.raises(ValueError, match="collide"):
        plan_nodes(first_port=first_port)


def test_each_node_listens_on_loopback_at_its_own_port() -> None:
    node = plan_nodes()[1]
    conf = rabbitmq_conf(node)
    assert "listeners.tcp.local = 127.0.0.1:5702" in conf
    assert "cluster_partition_handling = pause_minority" in conf


def test_haproxy_balances_every_node_with_health_checks() -> None:
    cfg = haproxy_cfg(plan_nodes(), port=56000)
    assert "bind 127.0.0.1:56000" in cfg
    assert "mode tcp" in cfg
    assert "on-marked-down shutdown-sessions" in cfg
    servers = [line.split()[1:3] for line in cfg.splitlines() if line.strip().startswith("server ")]
    assert servers == [["sp-c1", "127.0.0.1:5701"], ["sp-c2", "127.0.0.1:5702"], ["sp-c3", "127.0.0.1:5703"]]
    assert "default-server check" in cfg


def test_list_queues_json_is_read_by_queue_name() -> None:
    output = (
        "Timeout: 60.0 seconds ...\n"
        '[\n{"name":"q","type":"quorum","leader":"sp-c2@localhost","members":["sp-c1@localhost","sp-c2@localhost"],'
        '"consumers":2,"messages":0}\n]\n'
    )
    rows = parse_queues(output)
    assert rows["q"]["leader"] == "sp-c2@localhost"
    assert rows["q"]["consumers"] == 2


def test_an_answer_without_json_is_an_error() -> None:
    with pytest.raises(ValueError, match="no JSON"):
        parse_queues("Error: this command requires the 'rabbit' app to be running")
