"""k8s/components/redis, as an overlay would include it (prod namespace, next to the gateway):
it renders and validates strictly, Redis runs hardened and bounded, only the gateway pods may
reach it, and the gateway gets a NEXPO_REDIS_URL that names the Service and that it accepts.
(The checks shared with the overlays come from test_k8s_manifests.py.)"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from test_k8s_manifests import (
    K8S,
    KUBERNETES_VERSIONS,
    Obj,
    assert_hardened,
    by_kind,
    kustomize,
    one,
    quantity,
    selects,
    validate,
)

GATEWAY, REDIS = "nexpo", "nexpo-redis"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("prod-redis")
    (work / "kustomization.yaml").write_text(
        yaml.safe_dump({
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "namespace": "nexpo",
            "resources": [os.path.relpath(K8S / "overlays" / "prod", work)],
            "components": [os.path.relpath(K8S / "components" / "redis", work)],
        })
    )
    out = work / "rendered.yaml"
    out.write_text(yaml.safe_dump_all(kustomize(work), sort_keys=False))
    return out


@pytest.fixture(scope="module")
def objs(rendered: Path) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(rendered.read_text()) if doc]


def pod_of(objs: list[Obj], deployment: str) -> tuple[Obj, dict[str, str]]:
    template = one(objs, "Deployment", deployment)["spec"]["template"]
    return template["spec"], template["metadata"]["labels"]


def port_named(pod: Obj, name: str) -> int:
    (number,) = [p["containerPort"] for c in pod["containers"] for p in c["ports"] if p["name"] == name]
    return int(number)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_schema_valid_strict(rendered: Path, version: str) -> None:
    done = validate(rendered, version)
    assert done.returncode == 0, done.stdout + done.stderr


def test_redis_lives_beside_the_gateway(objs: list[Obj]) -> None:
    for o in objs:
        if o["kind"] != "Namespace":
            assert o["metadata"]["namespace"] == "nexpo", o["metadata"]["name"]
        assert o["metadata"]["labels"]["app.kubernetes.io/part-of"] == "nexpo"
    assert sorted(d["metadata"]["name"] for d in by_kind(objs, "Deployment")) == [GATEWAY, REDIS]


def test_redis_runs_hardened_bounded_and_in_memory_only(objs: list[Obj]) -> None:
    deployment = one(objs, "Deployment", REDIS)
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate", "two Redis would split the buckets"
    pod, labels = pod_of(objs, REDIS)
    assert selects(deployment["spec"]["selector"], labels)
    (redis,) = pod["containers"]
    assert_hardened(pod, redis, pod["securityContext"]["runAsUser"])
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False
    for name in ("cpu", "memory", "ephemeral-storage"):
        request, limit = redis["resources"]["requests"][name], redis["resources"]["limits"][name]
        assert 0 < quantity(request) <= quantity(limit), name
    args = redis["args"]
    assert args[args.index("--save") + 1] == "" and args[args.index("--appendonly") + 1] == "no"
    maxmemory = quantity(args[args.index("--maxmemory") + 1].replace("mb", "Mi"))
    assert maxmemory < quantity(redis["resources"]["limits"]["memory"]), "evict before the OOM killer"
    assert args[args.index("--maxmemory-policy") + 1].startswith("volatile-")  # buckets all expire
    assert redis["readinessProbe"] != redis["livenessProbe"]
    assert ":" in redis["image"] and not redis["image"].endswith(":latest")
    mounts = {m["mountPath"]: m["name"] for m in redis["volumeMounts"]}
    (data,) = [v for v in pod["volumes"] if v["name"] == mounts["/data"]]
    assert data["emptyDir"]["sizeLimit"]


def test_gateway_reaches_redis_through_its_service(objs: list[Obj], monkeypatch: pytest.MonkeyPatch) -> None:
    from nexpo.api.serve_options import load_settings

    gateway_pod, _ = pod_of(objs, GATEWAY)
    redis_pod, redis_labels = pod_of(objs, REDIS)
    (ref,) = [e["configMapRef"]["name"] for e in gateway_pod["containers"][0]["envFrom"]]
    url = one(objs, "ConfigMap", ref)["data"]["NEXPO_REDIS_URL"]
    service = one(objs, "Service", REDIS)
    assert all(redis_labels.get(k) == v for k, v in service["spec"]["selector"].items())
    (port,) = service["spec"]["ports"]
    assert port_named(redis_pod, port["targetPort"]) == 6379
    parts = urlsplit(url)
    assert (parts.scheme, parts.hostname, parts.port) == ("redis", REDIS, port["port"])
    monkeypatch.setenv("NEXPO_REDIS_URL", url)
    assert load_settings({}).redis_url == url
    gateway_service = one(objs, "Service", GATEWAY)
    assert not all(redis_labels.get(k) == v for k, v in gateway_service["spec"]["selector"].items())


def test_only_the_gateway_reaches_redis(objs: list[Obj]) -> None:
    policies = {p["metadata"]["name"]: p["spec"] for p in by_kind(objs, "NetworkPolicy")}
    assert set(policies) == {"default-deny", GATEWAY, REDIS}
    assert policies["default-deny"]["podSelector"] == {}
    _, gateway_labels = pod_of(objs, GATEWAY)
    redis_pod, redis_labels = pod_of(objs, REDIS)
    guard = policies[REDIS]
    assert selects(guard["podSelector"], redis_labels)
    assert not selects(guard["podSelector"], gateway_labels)
    assert sorted(guard["policyTypes"]) == ["Egress", "Ingress"]
    assert not guard.get("egress"), "Redis opens no connection"
    (rule,) = guard["ingress"]
    (source,) = rule["from"]
    assert set(source) == {"podSelector"}, "from pods of this namespace only"
    assert selects(source["podSelector"], gateway_labels)
    assert not selects(source["podSelector"], redis_labels)
    assert [port_named(redis_pod, p["port"]) for p in rule["ports"]] == [6379]
    # The gateway's egress: DNS as before, and Redis on its port, nothing else.
    gateway = policies[GATEWAY]
    assert selects(gateway["podSelector"], gateway_labels)
    to_redis = [r for r in gateway["egress"] if any("namespaceSelector" not in t for t in r["to"])]
    (redis_rule,) = to_redis
    (target,) = redis_rule["to"]
    assert selects(target["podSelector"], redis_labels)
    assert not selects(target["podSelector"], gateway_labels)
    assert redis_rule["ports"] == [{"protocol": "TCP", "port": 6379}]
    assert len(gateway["egress"]) == 2
