"""Deployment: the kustomize base (deploy/kubernetes), docker-compose.yml and its token
bootstrap, both Dockerfiles, the examples the README's walkthrough pushes, and the commands
of the documentation's pages "Running on Kubernetes" (docs/kubernetes.md) and "Flux on a
worker" (docs/flux.md).

There is no container engine or cluster here: the manifests are built with `kubectl
kustomize` and read as data, `kubectl create ... --dry-run=client` runs the pages' Secret
commands, the compose token script runs on this machine, and the service runs with the very
config and flags the Deployment gives it (paths moved to a temporary folder).
"""

from __future__ import annotations

import base64
import functools
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from app.cli.kratix import stage_command
from app.cli.push import pack
from app.config import Config, load_config
from gitops.bundle import Limits, parse_bundle
from gitops.git.process import environment
from gitops.owner import make_owner
from gitops.tarbundle import read_tar_bundle
from tests.fixtures.eck import CRD_NAMES, request_bundle, request_files
from tests.procs import running_server

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / "deploy" / "kubernetes"
NAMESPACE = "statewriter-system"
EXAMPLES = ROOT / "examples" / "elastic-cloud"
REQUESTS = ("example", "second-request")
SELECTORS = {"environment": "dev"}

# docs/reference.md section 8: the keys of the config file, and the environment variables of serve.
CONFIG_KEYS = {"author", "auth", "limits", "protectFromPrune", "publicUrl", "remoteCredentials",
               "push", "notify", "signing", "secrets"}
AUTHOR_KEYS = {"name", "email"}
TOKEN_KEYS = {"name", "token", "tokenFile", "promises", "destinations"}
LIMIT_KEYS = {"maxBundleBytes", "maxDocuments", "maxDocumentBytes", "maxFiles", "maxDepth",
              "maxNodes", "maxHeaderBytes"}
SERVE_ENV = {"STATEWRITER_HOST", "STATEWRITER_PORT", "STATEWRITER_DATA", "STATEWRITER_REMOTE",
             "STATEWRITER_BRANCH", "STATEWRITER_CONFIG"}

Doc = dict[str, Any]


# -- helpers ------------------------------------------------------------------------------


def run(command: list[str], *, cwd: Path = ROOT, env: dict[str, str] | None = None,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, env=env, input=stdin, capture_output=True, text=True,
                          timeout=120, check=False)


def kustomize(path: Path) -> list[Doc]:
    done = run(["kubectl", "kustomize", str(path)])
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@functools.cache
def base() -> tuple[Doc, ...]:
    return tuple(kustomize(BASE))


def one(docs: tuple[Doc, ...] | list[Doc], kind: str, name: str | None = None) -> Doc:
    found = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def pod_spec(docs: tuple[Doc, ...] | list[Doc] | None = None) -> Doc:
    spec: Doc = one(docs or base(), "Deployment", "statewriter")["spec"]["template"]["spec"]
    return spec


def container() -> Doc:
    (only,) = pod_spec()["containers"]
    result: Doc = only
    return result


def volume(name: str, docs: tuple[Doc, ...] | list[Doc] | None = None) -> Doc:
    (found,) = [v for v in pod_spec(docs)["volumes"] if v["name"] == name]
    result: Doc = found
    return result


def mount_path(name: str) -> str:
    (found,) = [m["mountPath"] for m in container()["volumeMounts"] if m["name"] == name]
    return str(found)


def serve_flags() -> dict[str, str]:
    """The Deployment's `statewriter serve --flag=value` arguments."""
    command = [*container()["command"], *container()["args"]]
    assert command[:2] == ["statewriter", "serve"]
    flags = {}
    for arg in command[2:]:
        key, equals, value = arg.partition("=")
        assert key.startswith("--") and equals, f"{arg}: flags are written --name=value"
        flags[key[2:]] = value
    return flags


def config_secret(docs: tuple[Doc, ...] | list[Doc] | None = None) -> tuple[str, str]:
    """The config file the Deployment mounts: (its key in the Secret, its text)."""
    docs = docs or base()
    name = volume("config", docs)["secret"]["secretName"]
    (key, encoded), = one(docs, "Secret", name)["data"].items()
    return key, base64.b64decode(encoded).decode()


def token_files(config: Doc) -> dict[str, str]:
    """tokenFile path -> the token's name, for every token read from a file."""
    return {t["tokenFile"]: t["name"] for t in config["auth"]["tokens"] if "tokenFile" in t}


def with_tokens_in(config_text: str, mount: str, folder: Path) -> tuple[Path, dict[str, str]]:
    """The config with its token files moved from `mount` into `folder`, each holding a token."""
    config = yaml.safe_load(config_text)
    secrets = {}
    folder.mkdir(parents=True, exist_ok=True)
    for token in config["auth"]["tokens"]:
        if "tokenFile" in token:
            assert token["tokenFile"].startswith(f"{mount}/"), token
            file = folder / token["tokenFile"].removeprefix(f"{mount}/")
            secrets[token["name"]] = f"{token['name']}-{os.urandom(8).hex()}"
            file.write_text(secrets[token["name"]] + "\n")
            token["tokenFile"] = str(file)
    path = folder.parent / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, secrets


def assert_contract_keys(config: Doc) -> None:
    """Only keys docs/reference.md section 8 lists: a strict config refuses anything else at start."""
    assert set(config) <= CONFIG_KEYS, set(config) - CONFIG_KEYS
    assert set(config.get("author", {})) <= AUTHOR_KEYS
    assert set(config.get("limits", {})) <= LIMIT_KEYS
    assert set(config.get("auth", {})) <= {"tokens"}
    for token in config.get("auth", {}).get("tokens", []):
        assert set(token) <= TOKEN_KEYS, token
        assert isinstance(token.get("promises", []), list)
        assert isinstance(token.get("destinations", False), bool)


def is_ignored(path: str) -> bool:
    done = run(["git", "check-ignore", "-q", path], env=environment())
    assert done.returncode in (0, 1), done.stderr
    return done.returncode == 0


def docs_page(name: str) -> str:
    """The text of the documentation page docs/<name>.md."""
    return (ROOT / "docs" / f"{name}.md").read_text()


def docs_command(name: str, needle: str) -> str:
    """The one shell command of the page docs/<name>.md that contains `needle` (continuations
    joined, a trailing comment dropped)."""
    lines = docs_page(name).replace("\\\n", " ").splitlines()
    found = [line for line in lines if needle in line and not line.lstrip().startswith("#")]
    assert len(found) == 1, f"docs/{name}.md: {len(found)} commands contain {needle!r}"
    return re.sub(r"\s+#\s.*$", "", found[0]).strip()


def kubectl_dry_run(command: str, env: dict[str, str] | None = None) -> Doc:
    """Run a documented `kubectl create ...` on no cluster: client-side dry run, as JSON."""
    command = re.sub(r"--context[= ]\S+\s*", "", command)
    assert command.startswith("kubectl "), command
    done = run(["bash", "-c", f"{command} --dry-run=client -o json"], env={**os.environ, **(env or {})})
    assert done.returncode == 0, done.stderr
    result: Doc = json.loads(done.stdout)
    return result


def help_text(*command: str) -> str:
    done = run([sys.executable, "-m", "app.cli", *command, "--help"])
    assert done.returncode == 0, done.stderr
    return done.stdout


def dockerfile(name: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, comments dropped and continuations joined."""
    text = re.sub(r"\\\n", " ", (ROOT / name).read_text())
    steps = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, rest = line.partition(" ")
            steps.append((instruction.upper(), rest.strip()))
    return steps


def instruction(name: str, which: str) -> list[str]:
    return [rest for step, rest in dockerfile(name) if step == which]


def dockerfile_env(name: str) -> dict[str, str]:
    env = {}
    for rest in instruction(name, "ENV"):
        for pair in shlex.split(rest):
            key, _, value = pair.partition("=")
            env[key] = value
    return env


def pyproject() -> Doc:
    with (ROOT / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)


def compose() -> Doc:
    result: Doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return result


def compose_mounts(service: str) -> dict[str, tuple[str, str]]:
    """target -> (source, mode) of a compose service's short-form volumes."""
    mounts = {}
    for entry in compose()["services"][service].get("volumes", []):
        source, target, *mode = entry.split(":")
        mounts[target] = (source, mode[0] if mode else "rw")
    return mounts


# -- Kubernetes: the kustomize base --------------------------------------------------------


def test_the_kustomize_base_builds_every_part() -> None:
    docs = base()
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == ["Deployment", "Namespace", "NetworkPolicy", "PersistentVolumeClaim", "Secret",
                     "Service", "ServiceAccount"]
    namespace = one(docs, "Namespace")
    assert namespace["metadata"]["name"] == NAMESPACE
    # the pod below meets the restricted Pod Security Standard, so the namespace enforces it
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == NAMESPACE, doc["metadata"]
    for path in sorted(BASE.rglob("*")):
        if path.is_file():
            assert not is_ignored(str(path.relative_to(ROOT))), f"{path} is git-ignored"


def test_every_container_is_non_root_read_only_and_probed() -> None:
    spec = pod_spec()
    pod = spec["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["runAsUser"] == pod["runAsGroup"] == pod["fsGroup"] == 10001
    containers = spec["containers"] + spec.get("initContainers", [])
    assert containers
    for each in containers:
        context = each["securityContext"]
        assert context["runAsNonRoot"] is True and context["runAsUser"] == 10001
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
        ports = {p["name"]: p["containerPort"] for p in each["ports"]}
        assert ports == {"http": 8080}
        probes = {kind: each[kind] for kind in ("startupProbe", "livenessProbe", "readinessProbe")}
        assert probes["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert probes["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert probes["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        for probe in probes.values():
            assert 5 <= probe["periodSeconds"] <= 30 and 1 <= probe["timeoutSeconds"] < probe["periodSeconds"]
            assert probe["failureThreshold"] >= 3
        # a slow start-up (a layout migration) gets minutes before liveness restarts it
        startup = probes["startupProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 120
        for part in ("requests", "limits"):
            assert set(each["resources"][part]) == {"cpu", "memory"}, part
        # a read-only root: it writes to the data volume and /tmp only
        writable = {m["mountPath"]: m["name"] for m in each["volumeMounts"] if not m.get("readOnly")}
        assert writable == {"/data": "data", "/tmp": "tmp"}
    assert "persistentVolumeClaim" in volume("data") and "emptyDir" in volume("tmp")


def test_one_writer_on_its_own_volume_without_api_access() -> None:
    docs = base()
    deployment = one(docs, "Deployment", "statewriter")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}  # never two pods on one data folder
    claim = one(docs, "PersistentVolumeClaim", volume("data")["persistentVolumeClaim"]["claimName"])
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert mount_path("data") == serve_flags()["data"] == "/data"
    assert container()["image"] == "ghcr.io/example/statewriter:latest"
    spec = pod_spec()
    account = one(docs, "ServiceAccount", spec["serviceAccountName"])
    assert account["automountServiceAccountToken"] is False
    assert spec["automountServiceAccountToken"] is False
    # service links would set STATEWRITER_PORT=tcp://... (the Service is named statewriter)
    assert spec["enableServiceLinks"] is False
    assert not any(e["name"].startswith("STATEWRITER_") for e in container().get("env", []))
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = one(docs, "Service", "statewriter")
    assert service["spec"]["selector"].items() <= labels.items()
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(8080, "http")]


def test_the_network_policy_admits_8080_and_resolves_names_only(tmp_path: Path) -> None:
    docs = base()
    labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    policy = one(docs, "NetworkPolicy", "statewriter")["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    (ingress,) = policy["ingress"]
    assert ingress["ports"] == [{"protocol": "TCP", "port": 8080}]
    assert ingress["from"] == [{"namespaceSelector": {}}]  # any pod of this cluster
    (egress,) = policy["egress"]
    assert sorted((p["protocol"], p["port"]) for p in egress["ports"]) == [("TCP", 53), ("UDP", 53)]
    # the git-remote component adds https and ssh out, for a remote state store
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [os.path.relpath(BASE, overlay)],
        "components": [os.path.relpath(BASE / "git-remote", overlay)],
    }))
    remote = one(kustomize(overlay), "NetworkPolicy", "statewriter-git-remote")
    assert remote["metadata"]["namespace"] == NAMESPACE
    assert remote["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    (out,) = remote["spec"]["egress"]
    assert sorted((p["protocol"], p["port"]) for p in out["ports"]) == [("TCP", 22), ("TCP", 443)]


def test_the_container_runs_serve_with_flags_it_has() -> None:
    scripts = pyproject()["project"]["scripts"]
    assert scripts["statewriter"] == "app.cli:main"
    flags = serve_flags()
    assert set(flags) == {"host", "port", "data", "config"}
    assert flags["host"] == "0.0.0.0" and flags["port"] == "8080"
    usage = help_text("serve")
    for flag in flags:
        assert f"--{flag}" in usage, flag


def test_the_mounted_config_is_one_serve_accepts(tmp_path: Path) -> None:
    key, text = config_secret()
    assert serve_flags()["config"] == f"{mount_path('config')}/{key}"
    config = yaml.safe_load(text)
    assert_contract_keys(config)
    # no secret in it: tokens are files from the Secret statewriter-tokens
    assert not any("token" in t for t in config["auth"]["tokens"])
    tokens_mount = mount_path("tokens")
    assert volume("tokens")["secret"]["secretName"] == "statewriter-tokens"
    path, secrets = with_tokens_in(text, tokens_mount, tmp_path / "tokens")
    flags = serve_flags()
    # the data folder moved to a temporary one: the service checks that it can create it
    loaded: Config = load_config(path, env={}, host=flags["host"], port=int(flags["port"]),
                                 data=tmp_path / "data")
    assert loaded.auth_enabled  # so serve listens on 0.0.0.0
    assert (loaded.host, loaded.port) == ("0.0.0.0", 8080)
    assert {t.name: t.secrets for t in loaded.tokens or ()} == {
        name: (secret,) for name, secret in secrets.items()}
    admins = [t for t in loaded.tokens or () if t.destinations and "*" in t.promises]
    readers = [t for t in loaded.tokens or () if not t.destinations and not t.promises]
    assert admins and readers  # someone can register destinations; Flux reads without write rights
    assert loaded.public_url == f"http://statewriter.{NAMESPACE}.svc.cluster.local:8080"


def test_the_kubernetes_page_creates_the_tokens_the_config_reads() -> None:
    command = docs_command("kubernetes", "create secret generic statewriter-tokens")
    secret = kubectl_dry_run(command)
    assert secret["metadata"] == {"name": "statewriter-tokens", "namespace": NAMESPACE,
                                  "creationTimestamp": None}
    _, text = config_secret()
    names = {path.removeprefix(f"{mount_path('tokens')}/") for path in token_files(yaml.safe_load(text))}
    assert set(secret["data"]) == names
    for value in secret["data"].values():
        assert re.fullmatch(r"[0-9a-f]{64}", base64.b64decode(value).decode())
    # the same command is in the comments of the base
    assert "--from-literal=flux=" in (BASE / "kustomization.yaml").read_text()
    namespace_file = BASE.relative_to(ROOT) / "namespace.yaml"
    assert f"kubectl apply -f {namespace_file}" in docs_page("kubernetes")


def test_an_overlay_sets_the_image_and_replaces_the_config(tmp_path: Path) -> None:
    """What docs/kubernetes.md tells users to write."""
    overlay = tmp_path / "my-statewriter"
    overlay.mkdir()
    _, text = config_secret()
    public = "https://statewriter.platform.example"
    (overlay / "config.yaml").write_text(text.replace(
        f"publicUrl: http://statewriter.{NAMESPACE}.svc.cluster.local:8080", f"publicUrl: {public}"))
    kustomization = docs_page("kubernetes").split("```yaml\n", 1)[1].split("```", 1)[0]
    (overlay / "kustomization.yaml").write_text(
        kustomization.replace("../deploy/kubernetes", os.path.relpath(BASE, overlay)))
    docs = kustomize(overlay)
    assert pod_spec(docs)["containers"][0]["image"] == "registry.example.com/platform/statewriter:0.1.0"
    _, replaced = config_secret(docs)
    assert yaml.safe_load(replaced)["publicUrl"] == public
    assert len([d for d in docs if d["kind"] == "Secret"]) == 1
    # a new config is a new Secret name, so the pod restarts with it
    assert volume("config", docs)["secret"]["secretName"] != volume("config")["secret"]["secretName"]


# -- docker compose -------------------------------------------------------------------------


def test_compose_starts_from_a_fresh_clone() -> None:
    services = compose()["services"]
    assert set(services) == {"tokens", "statewriter"}
    for service in services:
        for target, (source, _) in compose_mounts(service).items():
            if source.startswith("."):  # a bind mount: it must be in every clone
                assert (ROOT / source).exists(), f"{service}: {source} does not exist"
                assert not is_ignored(source), f"{service}: {source} is git-ignored"
            else:
                assert source in compose()["volumes"], f"{service}: {source} -> {target}"
    writer, tokens = services["statewriter"], services["tokens"]
    assert writer["depends_on"] == {"tokens": {"condition": "service_completed_successfully"}}
    # the tokens service writes the named volume the service reads, read-only there
    token_dir = tokens["environment"]["TOKEN_DIR"]
    assert compose_mounts("tokens")[token_dir] == ("tokens", "rw")
    (readers_mount,) = [t for t, (s, _) in compose_mounts("statewriter").items() if s == "tokens"]
    assert compose_mounts("statewriter")[readers_mount] == ("tokens", "ro")
    config_path = writer["environment"]["STATEWRITER_CONFIG"]
    source, mode = compose_mounts("statewriter")[config_path]
    assert mode == "ro"
    config = yaml.safe_load((ROOT / source).read_text())
    assert_contract_keys(config)
    files = token_files(config)
    assert {str(Path(f).parent) for f in files} == {readers_mount}
    assert sorted(Path(f).name for f in files) == sorted(tokens["command"])
    # the script runs as root in the base image the Dockerfile builds on, and hands the
    # files to the image's user
    assert tokens["image"] == instruction("Dockerfile", "FROM")[0]
    assert tokens["environment"]["TOKEN_OWNER"] == instruction("Dockerfile", "USER")[0]
    assert tokens["network_mode"] == "none"
    assert writer["build"] == "."
    assert writer["ports"] == ["127.0.0.1:8080:8080"]
    assert writer["read_only"] is True and writer["tmpfs"] == ["/tmp"]
    assert compose_mounts("statewriter")["/data"] == ("state", "rw")
    assert "/readyz" in " ".join(writer["healthcheck"]["test"])
    assert set(writer["environment"]) <= SERVE_ENV


def test_compose_tokens_are_written_once_and_never_printed(tmp_path: Path) -> None:
    tokens = compose()["services"]["tokens"]
    script = ROOT / compose_mounts("tokens")[tokens["entrypoint"][1]][0]
    folder = tmp_path / "tokens"
    owner = f"{os.getuid()}:{os.getgid()}"
    env = {"PATH": os.environ["PATH"], "TOKEN_DIR": str(folder), "TOKEN_OWNER": owner}

    def bootstrap() -> subprocess.CompletedProcess[str]:
        return run([tokens["entrypoint"][0], str(script), *tokens["command"]], env=env)

    first = bootstrap()
    assert first.returncode == 0, first.stderr
    values = {path.name: path.read_text() for path in folder.iterdir()}
    assert sorted(values) == sorted(tokens["command"])
    for name, value in values.items():
        assert re.fullmatch(r"[0-9a-f]{64}\n", value), name
        assert (folder / name).stat().st_mode & 0o777 == 0o400
        assert value.strip() not in first.stdout + first.stderr
        assert f"created {name}" in first.stdout
    assert len(set(values.values())) == len(values)
    assert "docker compose exec statewriter cat /config/tokens/platform-admin" in first.stdout
    again = bootstrap()
    assert again.returncode == 0, again.stderr
    assert {path.name: path.read_text() for path in folder.iterdir()} == values
    assert all(f"kept    {name}" in again.stdout for name in values)
    assert run(["sh", str(script)], env=env).returncode == 2  # no names
    assert run(["sh", str(script), "../escape"], env=env).returncode == 2
    # the compose config reads exactly these files and starts on 0.0.0.0 with them
    config_path = compose()["services"]["statewriter"]["environment"]["STATEWRITER_CONFIG"]
    source, _ = compose_mounts("statewriter")[config_path]
    text = (ROOT / source).read_text().replace("/config/tokens/", f"{folder}/")
    (tmp_path / "statewriter.yaml").write_text(text)
    loaded = load_config(tmp_path / "statewriter.yaml", env={"STATEWRITER_HOST": "0.0.0.0"})
    assert loaded.auth_enabled and loaded.host == "0.0.0.0"
    assert {t.name: t.secrets[0] + "\n" for t in loaded.tokens or ()} == values


# -- Dockerfiles ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.work-writer"])
def test_dockerfile_copies_what_a_clone_has_and_runs_non_root(name: str) -> None:
    assert not instruction(name, "ADD")
    copies = instruction(name, "COPY")
    assert copies
    for rest in copies:
        *sources, _ = [part for part in rest.split() if not part.startswith("--")]
        for source in sources:
            assert (ROOT / source).exists(), f"{name}: COPY {source} is not in the repository"
            assert not is_ignored(source), f"{name}: COPY {source} is git-ignored"
    (base_image,) = instruction(name, "FROM")
    version = re.fullmatch(r"python:(\d+)\.(\d+)-slim", base_image)
    assert version, base_image
    required = re.fullmatch(r">=(\d+)\.(\d+)", pyproject()["project"]["requires-python"])
    assert required and tuple(map(int, version.groups())) >= tuple(map(int, required.groups()))
    (user,) = instruction(name, "USER")
    uid, _, gid = user.partition(":")
    # numeric, so that runAsNonRoot can check it without a passwd file
    assert uid.isdigit() and gid.isdigit() and int(uid) > 0 and int(gid) > 0, user


def test_the_service_image_is_the_one_the_deployment_expects() -> None:
    (user,) = instruction("Dockerfile", "USER")
    context = pod_spec()["securityContext"]
    assert user == f"{context['runAsUser']}:{context['runAsGroup']}"
    assert f"--uid {context['runAsUser']}" in " ".join(instruction("Dockerfile", "RUN"))
    (entrypoint,) = instruction("Dockerfile", "ENTRYPOINT")
    assert json.loads(entrypoint) == container()["command"] + container()["args"][:1]
    assert json.loads(entrypoint)[0] in pyproject()["project"]["scripts"]
    env = {k: v for k, v in dockerfile_env("Dockerfile").items() if k.startswith("STATEWRITER_")}
    assert set(env) <= SERVE_ENV
    assert instruction("Dockerfile", "VOLUME") == [env["STATEWRITER_DATA"]] == [mount_path("data")]
    assert instruction("Dockerfile", "EXPOSE") == [env["STATEWRITER_PORT"]] == [serve_flags()["port"]]
    assert "git" in " ".join(instruction("Dockerfile", "RUN"))  # the store and /git need it


def test_the_work_writer_entrypoint_passes_flags_the_cli_has() -> None:
    (entrypoint,) = instruction("Dockerfile.work-writer", "ENTRYPOINT")
    program, command = json.loads(entrypoint)
    assert program in pyproject()["project"]["scripts"] and command == "kratix"
    assert "STATEWRITER_URL" in help_text(command)
    kratix = {"STATEWRITER_URL": "http://statewriter:8080", "KRATIX_PROMISE_NAME": "p",
              "KRATIX_WORKFLOW_TYPE": "resource", "KRATIX_OBJECT_NAME": "r",
              "PROMISE_GENERATION": "1", "PIPELINE": "x", "STATEWRITER_TRAILERS": "A=b"}
    for action in ("configure", "delete"):
        stage, *args = stage_command({**kratix, "KRATIX_WORKFLOW_ACTION": action})
        usage = help_text(stage)
        for flag in (arg for arg in args if arg.startswith("--")):
            assert flag in usage, f"the work-writer passes {flag} to statewriter {stage}"


# -- the examples the walkthrough pushes ----------------------------------------------------


@pytest.mark.parametrize("name", REQUESTS)
def test_the_examples_are_the_walkthrough_bundles(name: str) -> None:
    folder = EXAMPLES / name
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert files == sorted([*(f"output/{f}" for f in request_files(name)),
                            "metadata/destination-selectors.yaml"])
    assert yaml.safe_load((folder / "metadata" / "destination-selectors.yaml").read_text()) == [
        {"matchLabels": SELECTORS}]
    pushed = read_tar_bundle(pack(folder), make_owner("elastic-cloud", "default", name, "default"), Limits())
    posted = parse_bundle(request_bundle(name, destinationSelectors=SELECTORS))
    assert pushed.digest == posted.digest
    assert pushed.selectors == SELECTORS


# -- end to end: the base's config, the examples, Flux on a worker ----------------------------


def flux_docs(text: str) -> dict[str, Doc]:
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in yaml.safe_load_all(text) if d}


def inventory_ids(section: Path) -> Iterator[str]:
    """docs/flux.md: a build's objects in the form of Flux's inventory ids."""
    program = shlex.split(docs_command("flux", "python3 -c").partition("| python3 -c ")[2]
                          .partition(" | sort")[0])[0]
    built = run(["kubectl", "kustomize", str(section)])
    assert built.returncode == 0, built.stderr
    done = run([sys.executable, "-c", program], stdin=built.stdout)
    assert done.returncode == 0, done.stderr
    yield from done.stdout.split()


def test_the_base_config_serves_the_walkthrough_and_flux(tmp_path: Path) -> None:
    _, text = config_secret()
    path, secrets = with_tokens_in(text, mount_path("tokens"), tmp_path / "tokens")
    admin, reader = secrets["platform-admin"], secrets["flux"]
    with running_server(tmp_path / "server" / "data", config_yaml=path.read_text(),
                        ready_path="/healthz") as server:
        url = server.url
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            assert httpx.get(url + container()[probe]["httpGet"]["path"]).status_code == 200, probe
        headers = {"authorization": f"Bearer {admin}"}
        response = httpx.put(f"{url}/v1/destinations/worker-cluster-1", headers=headers,
                             json={"labels": SELECTORS})
        assert response.status_code == 200, response.text
        for name in REQUESTS:  # the walkthrough's commands
            env = {**os.environ, "STATEWRITER_TOKEN": admin}
            done = run([sys.executable, "-m", "app.cli", "push", str(EXAMPLES / name), "--url", url,
                        "--promise", "elastic-cloud", "--request", f"default/{name}"], env=env)
            assert done.returncode == 0, done.stderr
            assert "changed: true" in done.stdout and "destinations: worker-cluster-1" in done.stdout
            posted = httpx.post(f"{url}/v1/bundles", headers=headers,
                                json=request_bundle(name, destinationSelectors=SELECTORS))
            assert posted.status_code == 200, posted.text
            assert posted.json()["changed"] is False  # the very bundle the JSON form posts
            assert posted.json()["commit"] == server.tip()
        refused = httpx.post(f"{url}/v1/bundles", headers={"authorization": f"Bearer {reader}"},
                             json=request_bundle("third", destinationSelectors=SELECTORS))
        assert refused.status_code == 403  # Flux's token reads only
        flux = httpx.get(f"{url}/v1/destinations/worker-cluster-1/flux",
                         headers={"authorization": f"Bearer {reader}"})
        assert flux.status_code == 200, flux.text
        docs = flux_docs(flux.text)
        assert sorted(docs) == ["GitRepository/kratix-workload", "Kustomization/kratix-workload-dependencies",
                                "Kustomization/kratix-workload-resources"]
        source = docs["GitRepository/kratix-workload"]["spec"]
        assert source["url"] == f"http://statewriter.{NAMESPACE}.svc.cluster.local:8080/git/state.git"
        dependencies = docs["Kustomization/kratix-workload-dependencies"]["spec"]
        resources = docs["Kustomization/kratix-workload-resources"]["spec"]
        for spec in (dependencies, resources):
            assert spec["prune"] is True
            assert spec["sourceRef"] == {"kind": "GitRepository", "name": "kratix-workload"}
        assert dependencies["wait"] is True
        assert resources["dependsOn"] == [{"name": "kratix-workload-dependencies"}]
        assert {d["metadata"]["namespace"] for d in docs.values()} == {"flux-system"}
        # docs/flux.md: the Secret the GitRepository names, with the reader token as password
        command = docs_command("flux", "create secret generic kratix-workload-credentials")
        secret = kubectl_dry_run(command, {"FLUX_TOKEN": reader})
        assert secret["metadata"]["name"] == source["secretRef"]["name"]
        assert secret["metadata"]["namespace"] == "flux-system"
        assert base64.b64decode(secret["data"]["password"]).decode() == reader
        assert set(secret["data"]) == {"username", "password"}
        # ...which is what git over HTTP takes, as Flux sends it (basic auth)
        username = base64.b64decode(secret["data"]["username"]).decode()
        clone = tmp_path / "state"
        done = run(["git", "clone", "-q", url.replace("://", f"://{username}:{reader}@") + "/git/state.git",
                    str(clone)], env={**environment(), "GIT_TERMINAL_PROMPT": "0"})
        assert done.returncode == 0, done.stderr
        anonymous = run(["git", "ls-remote", f"{url}/git/state.git"],
                        env={**environment(), "GIT_TERMINAL_PROMPT": "0"})
        assert anonymous.returncode != 0
    ids = set(inventory_ids(clone / "worker-cluster-1" / "dependencies"))
    assert {f"_{plural}.{group}_apiextensions.k8s.io_CustomResourceDefinition"
            for plural, (group, _) in CRD_NAMES.items()} <= ids
    assert {"elastic-system_elastic-operator__ServiceAccount",
            "_elastic-operator_rbac.authorization.k8s.io_ClusterRole"} <= ids
    resources_ids = set(inventory_ids(clone / "worker-cluster-1" / "resources"))
    stacks = {f"default_{name}_elasticsearch.k8s.elastic.co_Elasticsearch" for name in REQUESTS}
    assert stacks <= resources_ids
    assert not ids & resources_ids
