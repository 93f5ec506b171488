"""deploy/k8s: every manifest is valid for a fixed Kubernetes version (kubernetes-validate), and
the pieces agree with each other, with the settings model and with the image."""

from __future__ import annotations

import re
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from kvisa.bot.settings import VARIABLES, Settings
from kvisa.errors import SettingsError
from tests.deploy.files import (
    K8S,
    caddy_paths,
    dockerfile_stages,
    drain_seconds,
    flows_configmap,
    is_secret,
    manifests,
    resource,
)

KUBERNETES = "1.33.0"  # the oldest release still supported upstream when this was written
FILES = sorted(path.name for path in K8S.glob("*.yaml") if path.name != "kustomization.yaml")


def commented_keys(name: str) -> set[str]:
    """Settings a manifest offers commented out (`  # WECHAT_TOKEN: ...`)."""
    text = (K8S / name).read_text(encoding="utf-8")
    return set(re.findall(r"^\s+# ([A-Z][A-Z0-9_]+): ", text, re.MULTILINE))


def deployment() -> dict[str, Any]:
    return resource("Deployment", "kvisa")


def bot_container() -> dict[str, Any]:
    (container,) = deployment()["spec"]["template"]["spec"]["containers"]
    assert isinstance(container, dict)
    return container


@pytest.mark.parametrize("name", FILES)
def test_manifest_is_valid_kubernetes(name: str) -> None:
    for doc in manifests(name):
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def test_the_flows_configmap_kubectl_makes_is_valid_and_fits() -> None:
    configmap = flows_configmap()
    kubernetes_validate.validate(configmap, KUBERNETES, strict=True)
    assert len(yaml.safe_dump(configmap).encode()) < 1024 * 1024  # a ConfigMap's limit


def test_kustomization_lists_every_manifest_but_the_secret_template() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    assert sorted(kustomization["resources"]) == [n for n in FILES if n != "secret.example.yaml"]
    namespace = resource("Namespace", kustomization["namespace"])
    assert namespace["kind"] == "Namespace"


def test_two_replicas_roll_one_at_a_time_and_a_disruption_leaves_one() -> None:
    spec = deployment()["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pdb = resource("PodDisruptionBudget", "kvisa")["spec"]
    labels = spec["template"]["metadata"]["labels"]
    assert pdb["minAvailable"] == 1
    assert pdb["selector"]["matchLabels"].items() <= labels.items()
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    service = resource("Service", "kvisa")["spec"]
    assert service["selector"].items() <= labels.items()


def test_probes_ask_readyz_for_traffic_and_healthz_for_life() -> None:
    container = bot_container()
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    port = int(resource("ConfigMap", "kvisa-settings")["data"]["KVISA_HTTP_PORT"])
    assert container["ports"] == [{"name": "http", "containerPort": port}]


def test_termination_grace_covers_the_pre_stop_pause_and_the_drain() -> None:
    pod = deployment()["spec"]["template"]["spec"]
    pause = bot_container()["lifecycle"]["preStop"]["exec"]["command"]
    assert pause[0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] >= int(pause[1]) + drain_seconds() + 5


def test_every_container_asks_for_resources() -> None:
    for kind, name in [("Deployment", "kvisa"), ("StatefulSet", "kvisa-redis")]:
        for container in resource(kind, name)["spec"]["template"]["spec"]["containers"]:
            requests = container["resources"]["requests"]
            assert {"cpu", "memory"} <= set(requests), (kind, name)
            assert "memory" in container["resources"]["limits"], (kind, name)


def test_the_pod_runs_as_the_image_user_on_a_read_only_root() -> None:
    pod = deployment()["spec"]["template"]["spec"]
    uid, _, gid = dockerfile_stages()[-1].all("USER")[-1].partition(":")
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (
        int(uid),
        int(gid),
    )
    assert bot_container()["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"] for m in bot_container()["volumeMounts"]}
    settings = resource("ConfigMap", "kvisa-settings")["data"]
    assert settings["KVISA_DATA_DIR"] in mounts  # writable, although nothing lasting goes there


def test_the_flows_configmap_is_mounted_where_the_settings_point() -> None:
    container = bot_container()
    volumes = {v["name"]: v for v in deployment()["spec"]["template"]["spec"]["volumes"]}
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "flows"]
    assert volumes["flows"]["configMap"]["name"] == flows_configmap()["metadata"]["name"]
    settings = resource("ConfigMap", "kvisa-settings")["data"]
    assert settings["KVISA_FLOWS_DIR"] == mount["mountPath"]


def test_settings_and_secrets_come_from_their_objects_and_name_real_settings() -> None:
    sources = bot_container()["envFrom"]
    assert {"configMapRef": {"name": "kvisa-settings"}} in sources
    assert {"secretRef": {"name": "kvisa-secrets"}} in sources
    settings = set(resource("ConfigMap", "kvisa-settings")["data"])
    settings |= commented_keys("settings.yaml")
    assert settings <= set(VARIABLES)
    assert not {variable for variable in settings if is_secret(variable)}
    settings_data = resource("ConfigMap", "kvisa-settings")["data"]
    assert settings_data["KVISA_HTTP_HOST"] == "0.0.0.0"


def test_every_key_of_the_secret_template_is_a_secret_setting() -> None:
    (secret,) = manifests("secret.example.yaml")
    assert secret["metadata"]["name"] == "kvisa-secrets"
    keys = set(secret["stringData"])
    assert keys <= set(VARIABLES)
    assert all(is_secret(key) for key in keys)
    commented = commented_keys("secret.example.yaml")  # WeChat's, to uncomment
    assert commented and commented <= set(VARIABLES)
    assert all(is_secret(key) for key in commented)


def test_the_secret_template_cannot_run_unedited() -> None:
    (secret,) = manifests("secret.example.yaml")
    env = {**resource("ConfigMap", "kvisa-settings")["data"], **secret["stringData"]}
    env.pop("KVISA_FLOWS_DIR")  # a path inside the pod
    placeholders = {key for key, value in secret["stringData"].items() if value.startswith("<")}
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(env)
    assert {problem.variable for problem in refused.value.problems} == placeholders


def test_the_ingress_routes_the_paths_the_caddyfile_routes() -> None:
    ingress = resource("Ingress", "kvisa")["spec"]
    (rule,) = ingress["rules"]
    routed: set[str] = set()
    for path in rule["http"]["paths"]:
        assert path["backend"]["service"]["name"] == "kvisa"
        p = path["path"]
        routed |= {p} if path["pathType"] == "Exact" else {p, p + "/*"}
    assert routed == caddy_paths()
    assert "/metrics" not in routed and "/readyz" not in routed
    assert ingress["tls"][0]["hosts"] == [rule["host"]]


def test_the_public_urls_agree_with_the_ingress_host() -> None:
    settings = resource("ConfigMap", "kvisa-settings")["data"]
    host = resource("Ingress", "kvisa")["spec"]["rules"][0]["host"]
    assert settings["KVISA_PUBLIC_URL"] == f"https://{host}"
    assert settings["TELEGRAM_WEBHOOK_URL"] == f"https://{host}/telegram"


def test_redis_keeps_an_append_only_file_on_a_persistent_volume() -> None:
    statefulset = resource("StatefulSet", "kvisa-redis")["spec"]
    (container,) = statefulset["template"]["spec"]["containers"]
    args = container["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    (claim,) = statefulset["volumeClaimTemplates"]
    assert {"name": claim["metadata"]["name"], "mountPath": "/data"} in container["volumeMounts"]
    (secret,) = manifests("secret.example.yaml")
    service = resource("Service", statefulset["serviceName"])
    port = service["spec"]["ports"][0]["port"]
    assert secret["stringData"]["REDIS_URL"] == f"redis://{service['metadata']['name']}:{port}/0"
