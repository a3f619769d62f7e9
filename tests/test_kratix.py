"""`statewriter kratix`, the work-writer image's entry point, run as Kratix runs the image:
the ENTRYPOINT of Dockerfile.work-writer, with Kratix's environment variables, against a real
service (configure, delete and its re-run, a promise workflow, trailers, arguments passed
on, what is missing); and the image's promise that the client needs none of the server's
libraries: the commands run with every library the image does not install refused."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Mapping
from importlib import metadata
from pathlib import Path

import httpx
import pytest
from packaging.requirements import Requirement

from app.cli.exits import UsageError
from app.cli.kratix import stage_command, trailer_entries
from tests.procs import QUICK_RETRIES, ROOT, Server, free_port, running_server, statewriter_command
from tests.test_push import CONFIG, TOKEN, pipeline_dir, register_worker, tip_trailers

DOCKERFILE = ROOT / "Dockerfile.work-writer"
# Kratix's variables and the stage's own: none leaks in from the environment the tests run in
STAGE_VARIABLES = re.compile(r"KRATIX_\w*|STATEWRITER_\w*|PROMISE|REQUEST|PIPELINE|PROMISE_GENERATION")
RESOURCE = {"KRATIX_WORKFLOW_TYPE": "resource", "KRATIX_PROMISE_NAME": "elastic-cloud",
            "KRATIX_OBJECT_NAMESPACE": "team-a", "STATEWRITER_TOKEN": TOKEN}
# The service's libraries (and those only its checks need): the client must not import them
SERVER_LIBRARIES = {"fastapi", "fastapi-offline", "starlette", "uvicorn", "uvloop", "httptools",
                    "pydantic", "pydantic-core", "pydantic-settings", "prometheus-client",
                    "jinja2", "kubernetes-validate", "cel-python", "google-re2", "pyrage",
                    "cryptography", "pyyaml", "gitpython"}


# -- the image ------------------------------------------------------------------------------


def dockerfile_steps() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of Dockerfile.work-writer, comments dropped, lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip())
            for line in map(str.strip, text.splitlines()) if line and not line.startswith("#")]


def entrypoint() -> list[str]:
    (found,) = [rest for step, rest in dockerfile_steps() if step == "ENTRYPOINT"]
    command: list[str] = json.loads(found)
    return command


def pip_installs() -> list[list[str]]:
    """The arguments of each `pip install` the image's RUN steps make."""
    found = []
    for step, rest in dockerfile_steps():
        if step == "RUN":
            for command in re.split(r"&&|;", rest):
                words = shlex.split(command)
                if words[:2] == ["pip", "install"]:
                    found.append(words[2:])
    return found


def image_libraries() -> dict[str, str]:
    """name -> requirement of each library the image installs besides statewriter itself."""
    libraries = {}
    for arguments in pip_installs():
        for word in arguments:
            if not word.startswith("-") and word != ".":
                libraries[distribution_name(word)] = word
    return libraries


def distribution_name(requirement: str) -> str:
    return re.split(r"[\s;<>=!~\[(]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def with_requirements(names: set[str]) -> set[str]:
    """`names` and every distribution they require on this Python (extras left out)."""
    found: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found.add(name)
        for text in metadata.requires(name) or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(distribution_name(requirement.name))
    return found


def image_command(*args: str) -> list[str]:
    """The image's ENTRYPOINT (`statewriter kratix`) run from this checkout, `args` after it."""
    program, *arguments = entrypoint()
    assert program in pyproject()["project"]["scripts"]
    return [*statewriter_command(), *arguments, *args]


def pyproject() -> dict[str, object]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)


def test_the_image_runs_statewriter_kratix_with_only_the_clients_libraries() -> None:
    assert entrypoint() == ["statewriter", "kratix"]
    installs = pip_installs()
    assert [arguments for arguments in installs if "." in arguments] == [
        ["--no-cache-dir", "--no-deps", "."]]  # statewriter itself, none of its dependencies
    declared = {distribution_name(r): r for r in pyproject()["project"]["dependencies"]}  # type: ignore[index]
    libraries = image_libraries()
    assert libraries == {"httpx": declared["httpx"]}  # as pyproject.toml asks for it
    assert not with_requirements(set(libraries)) & SERVER_LIBRARIES


# -- a real service, and the stage as Kratix runs it --------------------------------------------


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("kratix")
    with running_server(root / "data", config_yaml=CONFIG, ready_path="/healthz") as server:
        register_worker(server.url)
        yield server


def stage(variables: Mapping[str, str], *args: str, command: list[str] | None = None,
          ) -> subprocess.CompletedProcess[str]:
    """The image's entry point with Kratix's `variables` (and nothing of the tests' own)."""
    env = {k: v for k, v in os.environ.items() if not STAGE_VARIABLES.fullmatch(k)}
    return subprocess.run([*(command or image_command()), *args], cwd=ROOT, env={**env, **variables},
                          capture_output=True, text=True, timeout=120, check=False)


def get(server: Server, path: str) -> httpx.Response:
    return httpx.get(f"{server.url}/v1{path}", headers={"authorization": f"Bearer {TOKEN}"})


def pipelines(server: Server, path: str) -> list[str]:
    answer = get(server, path)
    if answer.status_code == 404:
        return []
    assert answer.status_code == 200, answer.text
    return sorted(p["pipeline"] for p in answer.json()["pipelines"])


def configure(server: Server, tmp_path: Path, name: str, **variables: str) -> dict[str, str]:
    """Kratix's environment for a resource configure workflow of request team-a/NAME."""
    return {**RESOURCE, "KRATIX_WORKFLOW_ACTION": "configure", "KRATIX_OBJECT_NAME": name,
            "KRATIX_PIPELINE_NAME": "instance-configure", "STATEWRITER_URL": server.url,
            "KRATIX_DIR": str(pipeline_dir(tmp_path, name)), **variables}


def test_a_configure_workflow_sends_the_output_as_its_pipelines_bundle(
        service: Server, tmp_path: Path) -> None:
    env = configure(service, tmp_path, "example")
    done = stage(env)
    assert done.returncode == 0, done.stderr
    assert "state: Scheduled" in done.stdout and "changed: true" in done.stdout
    assert pipelines(service, "/promises/elastic-cloud/requests/team-a/example") == ["instance-configure"]
    # what `statewriter push` sends for the same folder and identity: the very same bundle
    pushed = subprocess.run(
        [*statewriter_command(), "push", env["KRATIX_DIR"], "--url", service.url, "--promise",
         "elastic-cloud", "--request", "team-a/example", "--pipeline", "instance-configure"],
        cwd=ROOT, env={**os.environ, "STATEWRITER_TOKEN": TOKEN}, capture_output=True, text=True,
        timeout=120, check=False)
    assert pushed.returncode == 0 and "changed: false" in pushed.stdout, pushed.stderr


def test_the_stages_own_variables_come_before_kratixs(service: Server, tmp_path: Path) -> None:
    env = configure(service, tmp_path, "ignored", PROMISE="elastic-cloud", REQUEST="team-b/named",
                    PIPELINE="render", PROMISE_GENERATION="3")
    done = stage(env)
    assert done.returncode == 0, done.stderr
    assert pipelines(service, "/promises/elastic-cloud/requests/team-a/ignored") == []
    state = get(service, "/promises/elastic-cloud/requests/team-b/named").json()
    assert [(p["pipeline"], p["generation"]) for p in state["pipelines"]] == [("render", 3)]


def test_a_delete_workflow_removes_every_pipeline_and_a_rerun_succeeds(
        service: Server, tmp_path: Path) -> None:
    env = configure(service, tmp_path, "wf")
    for pipeline in ("instance-configure", "second-stage"):
        configured = stage({**env, "KRATIX_PIPELINE_NAME": pipeline})
        assert configured.returncode == 0, configured.stderr
    request = "/promises/elastic-cloud/requests/team-a/wf"
    assert pipelines(service, request) == ["instance-configure", "second-stage"]
    delete = {**env, "KRATIX_WORKFLOW_ACTION": "delete", "KRATIX_PIPELINE_NAME": "instance-delete"}
    deleted = stage(delete)
    assert deleted.returncode == 0, deleted.stderr
    assert "pipelines: instance-configure, second-stage" in deleted.stdout
    assert pipelines(service, request) == []
    rerun = stage(delete)
    assert rerun.returncode == 0, rerun.stderr
    assert "nothing to delete" in rerun.stdout


def test_a_delete_workflow_with_pipeline_removes_only_that_pipelines_output(
        service: Server, tmp_path: Path) -> None:
    env = configure(service, tmp_path, "one-of-two")
    for pipeline in ("instance-configure", "second-stage"):
        assert stage({**env, "KRATIX_PIPELINE_NAME": pipeline}).returncode == 0
    deleted = stage({**env, "KRATIX_WORKFLOW_ACTION": "delete", "PIPELINE": "second-stage"})
    assert deleted.returncode == 0, deleted.stderr
    assert pipelines(service, "/promises/elastic-cloud/requests/team-a/one-of-two") == [
        "instance-configure"]


def test_a_promise_workflow_sends_a_promise_level_bundle_and_cannot_delete(
        service: Server, tmp_path: Path) -> None:
    env = {"KRATIX_WORKFLOW_TYPE": "promise", "KRATIX_WORKFLOW_ACTION": "configure",
           "KRATIX_PROMISE_NAME": "elastic-cloud", "KRATIX_PIPELINE_NAME": "promise-configure",
           "KRATIX_DIR": str(pipeline_dir(tmp_path, "operator")), "STATEWRITER_URL": service.url,
           "STATEWRITER_TOKEN": TOKEN}
    done = stage(env)
    assert done.returncode == 0, done.stderr
    assert pipelines(service, "/promises/elastic-cloud") == ["promise-configure"]
    before = service.tip()
    refused = stage({**env, "KRATIX_WORKFLOW_ACTION": "delete"})
    assert refused.returncode == 2 and "removes one request" in refused.stderr
    assert len(refused.stderr.splitlines()) == 1 and service.tip() == before


def test_statewriter_trailers_go_into_the_commit(service: Server, tmp_path: Path) -> None:
    env = configure(service, tmp_path, "traced",
                    STATEWRITER_TRAILERS="Change-Request=CHG-1, Correlation-Id=run-7,")
    done = stage(env)
    assert done.returncode == 0, done.stderr
    root = service.data.parent
    assert tip_trailers(root)[-2:] == ["Change-Request: CHG-1", "Correlation-Id: run-7"]
    # one a line when a value holds a comma (and new output, so that there is a commit)
    (Path(env["KRATIX_DIR"]) / "output" / "extra.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\ndata: {k: v}\n")
    done = stage({**env, "STATEWRITER_TRAILERS": "Change-Request=CHG-2\nNote=a, b and c\n"})
    assert done.returncode == 0, done.stderr
    assert {"Change-Request: CHG-2", "Note: a, b and c"} <= set(tip_trailers(root))
    before = service.tip()
    bad = stage({**env, "STATEWRITER_TRAILERS": "Statewriter-X=1"})
    assert bad.returncode == 2 and "Statewriter-" in bad.stderr
    assert service.tip() == before


def test_arguments_after_kratix_are_passed_on(service: Server, tmp_path: Path) -> None:
    env = configure(service, tmp_path, "with-args")
    done = stage(env, "--trailer", "Note=from the container's args")
    assert done.returncode == 0, done.stderr
    assert "Note: from the container's args" in tip_trailers(service.data.parent)
    unknown = stage(env, "--bogus")
    assert unknown.returncode == 2 and "unrecognized arguments: --bogus" in unknown.stderr


@pytest.mark.parametrize(("missing", "said"), [
    ("STATEWRITER_URL", "set STATEWRITER_URL"),
    ("KRATIX_PROMISE_NAME", "set PROMISE or KRATIX_PROMISE_NAME"),
    ("KRATIX_OBJECT_NAME", "KRATIX_OBJECT_NAME is not set"),
])
def test_what_kratix_did_not_set_is_one_line_and_exit_2(
        service: Server, tmp_path: Path, missing: str, said: str) -> None:
    before = service.tip()
    env = configure(service, tmp_path, "incomplete")
    done = stage({k: v for k, v in env.items() if k != missing})
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith("statewriter: kratix: ") and said in done.stderr
    assert service.tip() == before


def test_statewriter_retries_bounds_the_retries(tmp_path: Path) -> None:
    env = {**RESOURCE, "KRATIX_OBJECT_NAME": "x", "STATEWRITER_RETRIES": "2",
           "STATEWRITER_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens there
           "KRATIX_DIR": str(pipeline_dir(tmp_path, "x"))}
    done = stage(env, command=[*statewriter_command(QUICK_RETRIES), "kratix"])
    assert done.returncode == 1
    assert done.stderr.count("retrying in") == 2 and "after 3 attempts" in done.stderr


# -- the stage's command, read from the environment (no service) ---------------------------------


@pytest.mark.parametrize(("env", "passed_on", "expected"), [
    ({"KRATIX_WORKFLOW_TYPE": "promise"}, [],
     ["push", "/kratix", "--url", "http://s", "--promise", "p", "--pipeline", "default",
      "--retries", "5"]),
    ({"KRATIX_WORKFLOW_TYPE": "resource", "KRATIX_OBJECT_NAME": "r", "KRATIX_DIR": "/d",
      "KRATIX_PIPELINE_NAME": "c", "STATEWRITER_RETRIES": "1"}, ["--wait"],
     ["push", "/d", "--url", "http://s", "--promise", "p", "--pipeline", "c", "--retries", "1",
      "--wait", "--request", "default/r"]),
    ({"KRATIX_WORKFLOW_ACTION": "delete", "REQUEST": "ns/r", "KRATIX_PIPELINE_NAME": "d"},
     ["--retries", "9"],
     ["delete", "--url", "http://s", "--promise", "p", "--retries", "5", "--retries", "9",
      "--request", "ns/r"]),
])
def test_the_stage_command(env: dict[str, str], passed_on: list[str], expected: list[str]) -> None:
    given = {"STATEWRITER_URL": "http://s", "KRATIX_PROMISE_NAME": "p", **env}
    assert stage_command(given, passed_on) == expected


def test_an_empty_variable_counts_as_unset() -> None:
    with pytest.raises(UsageError, match="STATEWRITER_URL"):
        stage_command({"STATEWRITER_URL": "", "PROMISE": "p"})
    assert stage_command({"STATEWRITER_URL": "http://s", "PROMISE": "", "KRATIX_PROMISE_NAME": "k",
                          "PIPELINE": ""})[4:8] == ["--promise", "k", "--pipeline", "default"]


@pytest.mark.parametrize(("value", "entries"), [
    ("A=1,B=2", ["A=1", "B=2"]),
    (" A=1 , ,B=2,", [" A=1 ", "B=2"]),
    ("A=1, 2\nB=x,y\n\n", ["A=1, 2", "B=x,y"]),
    ("", []),
])
def test_trailer_entries(value: str, entries: list[str]) -> None:
    assert trailer_entries(value) == entries


# -- the image's libraries only ------------------------------------------------------------------

# Runs `statewriter` (the arguments after the first) with every module of an installed
# distribution outside the first argument's list refused, as in an image without them; writes
# the modules it refused and the distributions it imported to $IMPORTS_REPORT (if set) at exit.
_IMAGE_ONLY = """
import atexit, importlib.abc, json, os, runpy, sys
from importlib import metadata

allowed = set(json.loads(sys.argv.pop(1)))
owners = metadata.packages_distributions()
refused = []

def distributions(top):
    return {name.lower().replace("_", "-") for name in owners.get(top, ())}

class NotInTheImage(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        found = distributions(name.partition(".")[0])
        if found and not found & allowed:
            refused.append(name)
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

def report():
    if "IMPORTS_REPORT" not in os.environ:
        return
    imported = set()
    for name in list(sys.modules):
        imported |= distributions(name.partition(".")[0])
    with open(os.environ["IMPORTS_REPORT"], "w") as out:
        json.dump({"refused": refused, "imported": sorted(imported)}, out)

sys.meta_path.insert(0, NotInTheImage())
atexit.register(report)
runpy.run_module("app.cli", run_name="__main__", alter_sys=True)
"""


def only_the_image() -> list[str]:
    """The command that runs `statewriter` as in the image: its libraries only."""
    allowed = with_requirements(set(image_libraries())) | {"statewriter"}
    return [sys.executable, "-c", _IMAGE_ONLY, json.dumps(sorted(allowed))]


@pytest.mark.parametrize("workflow", ["configure", "delete", "push"])
def test_the_client_runs_with_only_the_images_libraries(
        service: Server, tmp_path: Path, workflow: str) -> None:
    report = tmp_path / "imports.json"
    env = {**configure(service, tmp_path, "slim"), "IMPORTS_REPORT": str(report)}
    if workflow == "push":
        args = ["push", env["KRATIX_DIR"], "--promise", "elastic-cloud", "--request", "team-a/slim"]
    else:
        args = ["kratix"]
        env["KRATIX_WORKFLOW_ACTION"] = workflow
    done = stage(env, *args, command=only_the_image())
    assert done.returncode == 0, done.stderr
    found = json.loads(report.read_text())
    owners = metadata.packages_distributions()
    tried = {distribution_name(owner) for name in found["refused"]
             for owner in owners.get(name.partition(".")[0], ())}
    assert not tried & SERVER_LIBRARIES, found["refused"]  # not even tried, let alone needed
    assert "httpx" in found["imported"] and not set(found["imported"]) & SERVER_LIBRARIES


def test_a_command_the_image_cannot_run_says_so_in_one_line(tmp_path: Path) -> None:
    """Offline validation needs the schemas and YAML libraries, which the image leaves out."""
    env = {"IMPORTS_REPORT": str(tmp_path / "imports.json")}
    done = stage(env, "validate", str(pipeline_dir(tmp_path)), command=only_the_image())
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [done.stderr.strip()]
    assert "is not installed here" in done.stderr
    assert "install statewriter with its dependencies" in done.stderr
