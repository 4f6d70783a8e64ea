"""deploy/: the image, compose and Kubernetes files agree with the code (checked statically)."""

from __future__ import annotations

import importlib
import inspect
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from schemas.topics import ALL_TOPICS
from services.cli import registry
from services.common.settings import ServiceSettings
from services.ops.settings import PIPELINE_GROUPS, OpsSettings

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
KNOWN_SERVICES: dict[str, str] = registry._KNOWN_SERVICES
IMAGE_ENV = {"OMP_THREAD_LIMIT", "PYTHONUNBUFFERED"}  # process environment, not settings


def settings_classes() -> dict[str, list[type[BaseSettings]]]:
    """Service name -> the settings classes its ``services/<pkg>/settings.py`` defines."""
    found: dict[str, list[type[BaseSettings]]] = {}
    for name, module in KNOWN_SERVICES.items():
        path = ROOT / module.replace(".", "/").rsplit("/", 1)[0] / "settings.py"
        if path.exists():
            loaded = importlib.import_module(module.rsplit(".", 1)[0] + ".settings")
            found[name] = [
                c
                for _, c in inspect.getmembers(loaded, inspect.isclass)
                if issubclass(c, BaseSettings) and c.__module__ == loaded.__name__
            ]
    return found


def env_names(cls: type[BaseSettings]) -> set[str]:
    """Every environment variable a settings class reads."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    names: set[str] = set()
    for field_name, field in cls.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names |= {c.upper() for c in alias.choices if isinstance(c, str)}
        elif isinstance(alias, str):
            names.add(alias.upper())
        else:
            names.add(f"{prefix}{field_name}".upper())
    return names


SHARED_ENV = env_names(ServiceSettings) | {
    name for name in env_names(OpsSettings) if name.startswith("METRICS_")
}


def allowed_env(service: str) -> set[str]:
    """What a service container may set: shared settings plus its own settings class."""
    return SHARED_ENV | {n for c in settings_classes().get(service, []) for n in env_names(c)}


def code_consumer_groups() -> set[str]:
    """Default ``*group_id`` of every service settings class: the consumer groups in use."""
    return {
        str(field.default)
        for classes in settings_classes().values()
        for cls in classes
        for name, field in cls.model_fields.items()
        if name.endswith("group_id") and isinstance(field.default, str)
    }


def from_env(monkeypatch: pytest.MonkeyPatch, environment: dict[str, str]) -> ServiceSettings:
    """Shared settings as a container would read them from this environment."""
    for name in SHARED_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        if name in SHARED_ENV:
            monkeypatch.setenv(name, str(value))
    return ServiceSettings()


def load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def k8s_docs() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    return [doc for name in kustomization["resources"] for doc in load_all(K8S / name)]


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for doc in k8s_docs() if doc["kind"] == kind]


COMPOSE = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
PROJECT = {
    name: spec
    for name, spec in COMPOSE["services"].items()
    if spec.get("image", "").startswith("aiguillage")
}


def test_ops_dockerfile_builds_the_project_image_with_french_ocr() -> None:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    assert "tesseract-ocr " in text
    assert "tesseract-ocr-fra" in text
    assert re.search(r"pip install \.", text)
    assert 'ENTRYPOINT ["aiguillage"]' in text
    for line in re.findall(r"^COPY (.+)$", text, re.M):
        for source in line.split()[:-1]:
            assert (ROOT / source).exists(), source
    assert (ROOT / COMPOSE["x-aiguillage"]["build"]["dockerfile"]).exists()


def test_ops_compose_runs_every_service_in_its_own_container() -> None:
    commands = {name: spec["command"] for name, spec in PROJECT.items()}
    runs = {cmd[1]: name for name, cmd in commands.items() if cmd[0] == "run"}
    assert set(runs) == set(KNOWN_SERVICES), "one container per known service"
    assert all(runs[service] == service for service in runs)
    assert set(registry.SERVICES) <= set(runs)
    assert commands["migrate"] == ["db", "upgrade"]
    for name, spec in PROJECT.items():
        if name != "migrate":
            assert spec["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_ops_compose_runs_apache_kafka_in_kraft_mode_and_postgres() -> None:
    kafka = COMPOSE["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert "controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"]
    assert COMPOSE["services"]["postgres"]["image"].startswith("postgres:")
    bootstrap = PROJECT["router"]["environment"]["KAFKA_BOOTSTRAP_SERVERS"]
    assert bootstrap.split(":")[0] == "kafka"
    assert "@postgres:" in PROJECT["router"]["environment"]["DATABASE_URL"]


@pytest.mark.parametrize("service", sorted(PROJECT))
def test_ops_compose_sets_only_environment_the_settings_read(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    environment = PROJECT[service]["environment"]
    unknown = set(environment) - allowed_env(service) - IMAGE_ENV
    assert not unknown, f"{service} sets variables no settings class reads: {unknown}"
    assert from_env(monkeypatch, environment).kafka_bootstrap_servers


def test_ops_compose_references_exist() -> None:
    services, volumes = COMPOSE["services"], set(COMPOSE["volumes"])
    for name, spec in services.items():
        for target in spec.get("depends_on", {}):
            assert target in services, (name, target)
        for mount in spec.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), (name, source)
            else:
                assert source in volumes, (name, source)


def test_ops_every_topic_has_a_kafka_topic_with_its_partitions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    topics = {doc["spec"]["topicName"]: doc for doc in of_kind("KafkaTopic")}
    assert set(topics) == set(ALL_TOPICS)
    configured = from_env(monkeypatch, of_kind("ConfigMap")[0]["data"])
    in_compose = from_env(monkeypatch, PROJECT["router"]["environment"])
    for topic, doc in topics.items():
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", doc["metadata"]["name"]), topic
        assert doc["metadata"]["labels"]["strimzi.io/cluster"] == "aiguillage"
        partitions = doc["spec"]["partitions"]
        assert partitions >= 1
        assert configured.partitions_for(topic) == partitions, topic
        assert in_compose.partitions_for(topic) == partitions, topic


def test_ops_every_consumer_group_scales_on_its_lag() -> None:
    assert code_consumer_groups() <= set(PIPELINE_GROUPS), "the lag exporter misses a group"
    deployments = {doc["metadata"]["name"] for doc in of_kind("Deployment")}
    partitions = {
        doc["spec"]["topicName"]: doc["spec"]["partitions"] for doc in of_kind("KafkaTopic")
    }
    triggers: dict[str, str] = {}
    for scaled in of_kind("ScaledObject"):
        assert scaled["spec"]["scaleTargetRef"]["name"] in deployments
        assert scaled["spec"]["minReplicaCount"] >= 1
        for trigger in scaled["spec"]["triggers"]:
            assert trigger["type"] == "kafka"
            meta = trigger["metadata"]
            triggers[meta["consumerGroup"]] = meta["topic"]
        most = max(partitions[t["metadata"]["topic"]] for t in scaled["spec"]["triggers"])
        assert scaled["spec"]["maxReplicaCount"] <= most, "idle consumers beyond partitions"
    assert set(PIPELINE_GROUPS) | code_consumer_groups() <= set(triggers)
    for group, topics in PIPELINE_GROUPS.items():
        assert triggers[group] in topics


def test_ops_k8s_deploys_each_service_with_probes_and_its_settings() -> None:
    deployments = {doc["metadata"]["name"]: doc for doc in of_kind("Deployment")}
    assert set(deployments) == set(KNOWN_SERVICES)
    shared = set(of_kind("ConfigMap")[0]["data"])
    assert shared <= SHARED_ENV
    for name, doc in deployments.items():
        container = doc["spec"]["template"]["spec"]["containers"][0]
        assert container["args"] == ["run", name]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        assert ports["metrics"] == int(of_kind("ConfigMap")[0]["data"]["METRICS_PORT"])
        own = {entry["name"] for entry in container.get("env", [])}
        assert not own - allowed_env(name), name
    job = of_kind("Job")[0]["spec"]["template"]["spec"]["containers"][0]
    assert job["args"] == ["db", "upgrade"]


def test_ops_k8s_resources_parse_and_are_namespaced() -> None:
    for doc in k8s_docs():
        assert {"apiVersion", "kind", "metadata"} <= set(doc)
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "aiguillage", doc["metadata"]["name"]
    json.dumps(k8s_docs())  # plain data: no YAML tags or anchors left


def test_ops_brokers_take_the_largest_message_the_services_publish() -> None:
    # Kafka's default message.max.bytes is 1 MiB; the services publish up to
    # KAFKA_MAX_REQUEST_SIZE (an item's text may hold a million characters).
    produced = ServiceSettings().kafka_max_request_size
    environments = [COMPOSE["x-env"], *(c["data"] for c in of_kind("ConfigMap"))]
    assert all("KAFKA_BOOTSTRAP_SERVERS" in env for env in environments)  # the right maps
    for env in environments:
        assert int(env.get("KAFKA_MAX_REQUEST_SIZE", produced)) == produced
    compose_broker = COMPOSE["services"]["kafka"]["environment"]
    assert int(compose_broker["KAFKA_MESSAGE_MAX_BYTES"]) >= produced
    (cluster,) = of_kind("Kafka")
    assert int(cluster["spec"]["kafka"]["config"]["message.max.bytes"]) >= produced
