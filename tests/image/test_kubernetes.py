"""deploy/kubernetes/: valid for Kubernetes (``kubernetes-validate --strict``, PyPI), and
wired to the image and the app as docs/operations.md says: one image and one environment
for every container, the image's user, a read-only root with writable volumes where the
app writes, probes on /health and /ready, a grace period that covers the drain, the
crontab's jobs and schedules."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tests.cron_helpers import crontab_entries
from tests.image.test_dockerfile import instructions

KUBERNETES_DIR = ROOT / "deploy" / "kubernetes"
MANIFESTS = sorted(KUBERNETES_DIR.glob("*.yaml"))
VALIDATE = Path(sys.executable).parent / "kubernetes-validate"
# The newest schemas kubernetes-validate ships (its default) and an older release still
# common in managed clusters.
KUBERNETES_VERSIONS = ("1.37.0", "1.31.0")
PRESTOP_SLEEP = ["sleep"]


def resources():
    """{(kind, name): document} of every manifest."""
    found = {}
    for path in MANIFESTS:
        for doc in yaml.safe_load_all(path.read_text()):
            found[(doc["kind"], doc["metadata"]["name"])] = doc
    return found


def pod_spec(resource):
    spec = resource["spec"]
    if resource["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]


def workloads():
    kinds = {"Deployment", "Job", "CronJob"}
    return {key: doc for key, doc in resources().items() if key[0] in kinds}


def image_user():
    uid, gid = instructions("USER")[-1].split(":")
    return int(uid), int(gid)


def image_env(name):
    text = " ".join(instructions("ENV"))
    return re.search(rf"\b{name}=(\S+)", text).group(1)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_passes_kubernetes_validate_strict(version):
    assert MANIFESTS, f"no manifests in {KUBERNETES_DIR}"
    check = subprocess.run(
        [VALIDATE, "--strict", "--quiet", "-k", version, *map(str, MANIFESTS)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, f"kubernetes-validate {version}:\n{check.stdout}{check.stderr}"


def test_every_container_runs_the_one_image_with_the_one_environment_as_the_image_user():
    images = set()
    uid, gid = image_user()
    for (kind, name), doc in workloads().items():
        spec = pod_spec(doc)
        where = f"{kind} {name}"
        pod = spec["securityContext"]
        assert (pod["runAsNonRoot"], pod["runAsUser"], pod["runAsGroup"]) == (True, uid, gid), (
            f"{where}: runAsNonRoot with the Dockerfile's USER {uid}:{gid}"
        )
        for container in spec["containers"]:
            images.add(container["image"])
            assert container["envFrom"] == [
                {"configMapRef": {"name": "portal-config"}},
                {"secretRef": {"name": "portal-env"}},
            ], f"{where}: env from the ConfigMap portal-config and the Secret portal-env"
            security = container["securityContext"]
            assert security == {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
            }, f"{where}: {security}"
            mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
            assert "/tmp" in mounts, f"{where}: a writable /tmp (the root is read-only)"
            assert container["resources"]["limits"]["memory"], f"{where}: a memory limit"
    assert len(images) == 1, f"every container runs the same image: {images}"


def test_the_deployment_probes_drains_and_writes_where_the_app_writes():
    deployment = resources()[("Deployment", "portal")]
    spec = pod_spec(deployment)
    (container,) = spec["containers"]
    assert "command" not in container, "the web tier runs the image's default command"
    probes = {kind: container[kind]["httpGet"]["path"] for kind in
              ("startupProbe", "livenessProbe", "readinessProbe")}  # fmt: skip
    assert probes == {"startupProbe": "/health", "livenessProbe": "/health",
                      "readinessProbe": "/ready"}  # fmt: skip
    assert container["readinessProbe"]["timeoutSeconds"] >= 5, "deploy/probes.md: 5 s"

    config = resources()[("ConfigMap", "portal-config")]["data"]
    drain = float(config["PORTAL_DRAIN_SECONDS"])
    graceful = int(re.search(r"^graceful_timeout = (\d+)", (ROOT / "gunicorn.conf.py")
                             .read_text(), re.MULTILINE).group(1))  # fmt: skip
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[:1] == PRESTOP_SLEEP, pre_stop
    needed = int(pre_stop[1]) + drain + graceful
    assert spec["terminationGracePeriodSeconds"] > needed, (
        f"terminationGracePeriodSeconds {spec['terminationGracePeriodSeconds']} must exceed "
        f"preStop {pre_stop[1]} s + PORTAL_DRAIN_SECONDS {drain} + graceful_timeout {graceful}"
    )
    assert config["WEB_CONCURRENCY"], "gunicorn counts the node's CPUs: set the workers"

    mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
    assert {"/tmp", "/dev/shm", image_env("PORTAL_DATA_DIR")} <= mounts, mounts
    port = image_env("PORT")
    assert container["ports"] == [{"name": "http", "containerPort": int(port)}]


def test_the_service_and_the_budget_select_the_deployment_pods():
    found = resources()
    labels = found[("Deployment", "portal")]["spec"]["template"]["metadata"]["labels"]
    service = found[("Service", "portal")]["spec"]
    assert service["selector"].items() <= labels.items()
    assert service["ports"][0]["targetPort"] == "http"
    budget = found[("PodDisruptionBudget", "portal")]["spec"]
    assert budget["selector"]["matchLabels"].items() <= labels.items()


def test_the_cronjobs_run_the_crontab_commands_without_overlap():
    found = resources()
    crontab = {}
    for schedule, _user, command in crontab_entries():
        job, *args = command.split()[1:]
        crontab[job] = (schedule, ["python", "manage.py", job, *args])
    cronjobs = {name: doc for (kind, name), doc in found.items() if kind == "CronJob"}
    assert {name.replace("-", "_") for name in cronjobs} == set(crontab)
    for name, doc in cronjobs.items():
        spec = doc["spec"]
        schedule, command = crontab[name.replace("-", "_")]
        assert spec["schedule"] == schedule, f"{name}: the crontab's schedule"
        assert spec["concurrencyPolicy"] == "Forbid", name
        assert spec["startingDeadlineSeconds"] > 0, name
        assert spec["successfulJobsHistoryLimit"] >= 1 and spec["failedJobsHistoryLimit"] >= 1
        job = spec["jobTemplate"]["spec"]
        assert job["backoffLimit"] == 0 and job["activeDeadlineSeconds"] > 0, name
        (container,) = pod_spec(doc)["containers"]
        assert container["command"] == command, f"{name}: the crontab's command line"


def test_the_migration_job_migrates_once():
    job = resources()[("Job", "portal-migrate")]
    (container,) = pod_spec(job)["containers"]
    assert container["command"] == ["python", "manage.py", "migrate", "--no-input"]
    assert job["spec"]["backoffLimit"] == 0 and pod_spec(job)["restartPolicy"] == "Never"
