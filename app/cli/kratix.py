"""`statewriter kratix`: the work-writer image's entry point, the last stage of a Kratix
Promise pipeline. What the stage does is read from the environment Kratix gives it
(`stage_command`, a pure function of it) and run as `statewriter push` or `statewriter
delete` would run it."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from typing import Any

from app.cli import delete, push
from app.cli.exits import UsageError
from app.cli.parsing import OneLineParser
from gitops.owner import DEFAULT_PIPELINE

KRATIX_HELP = """\
The work-writer stage of a Kratix Promise pipeline (the work-writer image's entry point). In
configure workflows it sends what the earlier stages left in /kratix/output and
/kratix/metadata to statewriter as ONE bundle (statewriter push); in delete workflows it
removes what the request owns (statewriter delete). Either fails the pipeline on any non-2xx
answer. Everything comes from the environment:

  STATEWRITER_URL       the service, e.g. http://statewriter.statewriter-system:8080 (required)
  STATEWRITER_TOKEN     a bearer token whose promises include this promise (from a Secret)
  PROMISE               default: KRATIX_PROMISE_NAME (set by Kratix)
  REQUEST               NS/NAME; in resource workflows (KRATIX_WORKFLOW_TYPE=resource) default:
                        KRATIX_OBJECT_NAMESPACE/KRATIX_OBJECT_NAME (set by Kratix; the
                        namespace defaults to "default"); promise workflows send a
                        promise-level bundle
  PIPELINE              configure: default KRATIX_PIPELINE_NAME (set by Kratix), else
                        "default". delete: unset removes the output of every pipeline of the
                        request (the delete pipeline's own name is NOT used); set, only that
                        pipeline's output
  PROMISE_GENERATION    configure: the promise generation that rendered the output (optional)
  STATEWRITER_RETRIES   retries with backoff while the service cannot be reached (default: 5)
  STATEWRITER_TRAILERS  configure: commit trailers of the bundle's own, KEY=VALUE entries
                        separated by commas, e.g. "Change-Request=CHG-1,Correlation-Id=run-7",
                        or one a line when a value holds a comma; each is a --trailer (keys
                        like Change-Request, not Statewriter-*; values one line of at most
                        256 characters; at most 16)
  KRATIX_DIR            configure: the folder holding output/ and metadata/ (default: /kratix)
  KRATIX_WORKFLOW_ACTION  set by Kratix: "delete" runs statewriter delete, anything else
                        statewriter push

Arguments after `kratix` (the container's `args`) are passed on to the command, e.g. --wait.
A delete is idempotent: when nothing is stored for the request (a re-run), the stage says
so and succeeds. Delete workflows of a promise (no request) are refused: remove
promise-level bundles with DELETE /v1/promises/{promise}.

The pipeline's destination selectors go in /kratix/metadata/destination-selectors.yaml
(Kratix's list form) or /kratix/metadata/cluster-selectors.yaml (a plain map), its status in
/kratix/metadata/status.yaml, as Kratix's own work-writer reads them.

Exit statuses are those of statewriter push and statewriter delete: 0 done, 1 refused or
unreachable, 2 a mistake in the environment or the arguments.
"""
DEFAULT_KRATIX_DIR = "/kratix"
DEFAULT_RETRIES = "5"
# The commands a stage runs, by the name `stage_command` gives first
STAGES = {"push": (push.add_parser, push.push_command),
          "delete": (delete.add_parser, delete.delete_command)}


def add_parser(commands: Any) -> None:
    kratix = commands.add_parser(
        "kratix", help="a Kratix pipeline's work-writer stage, from Kratix's environment",
        description=KRATIX_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    kratix.set_defaults(passes_on=True)


def kratix_command(args: argparse.Namespace) -> int:
    try:
        argv = stage_command(os.environ, args.passed_on)
    except UsageError as error:
        raise UsageError(f"kratix: {error}") from None
    add_stage_parser, run = STAGES[argv[0]]
    parser = OneLineParser(prog="statewriter")
    add_stage_parser(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(argv))


def stage_command(env: Mapping[str, str], passed_on: Sequence[str] = ()) -> list[str]:
    """The `statewriter push ...` or `statewriter delete ...` arguments (without
    `statewriter`) that the stage described by `env` runs, `passed_on` among them. An empty
    variable counts as unset."""

    def given(name: str) -> str:
        return env.get(name, "")

    url = given("STATEWRITER_URL")
    if not url:
        raise UsageError("set STATEWRITER_URL to the service's URL, e.g. "
                         "http://statewriter.statewriter-system:8080")
    promise = given("PROMISE") or given("KRATIX_PROMISE_NAME")
    if not promise:
        raise UsageError("set PROMISE or KRATIX_PROMISE_NAME")
    retries = given("STATEWRITER_RETRIES") or DEFAULT_RETRIES
    request = given("REQUEST")
    if not request and given("KRATIX_WORKFLOW_TYPE") == "resource":
        if not given("KRATIX_OBJECT_NAME"):
            raise UsageError("KRATIX_OBJECT_NAME is not set (a resource workflow names its "
                             "request there)")
        request = f"{given('KRATIX_OBJECT_NAMESPACE') or 'default'}/{given('KRATIX_OBJECT_NAME')}"
    if (given("KRATIX_WORKFLOW_ACTION") or "configure") == "delete":
        if not request:
            raise UsageError("a delete workflow removes one request: set REQUEST (resource "
                             "workflows default to KRATIX_OBJECT_NAMESPACE/KRATIX_OBJECT_NAME); "
                             "promise-level bundles are removed with DELETE /v1/promises/{promise}")
        argv = ["delete", "--url", url, "--promise", promise, "--retries", retries, *passed_on,
                "--request", request]
        return [*argv, "--pipeline", given("PIPELINE")] if given("PIPELINE") else argv
    argv = ["push", given("KRATIX_DIR") or DEFAULT_KRATIX_DIR, "--url", url, "--promise", promise,
            "--pipeline", given("PIPELINE") or given("KRATIX_PIPELINE_NAME") or DEFAULT_PIPELINE,
            "--retries", retries, *passed_on]
    if request:
        argv += ["--request", request]
    if given("PROMISE_GENERATION"):
        argv += ["--promise-generation", given("PROMISE_GENERATION")]
    for trailer in trailer_entries(given("STATEWRITER_TRAILERS")):
        argv += ["--trailer", trailer]
    return argv


def trailer_entries(value: str) -> list[str]:
    """STATEWRITER_TRAILERS as its KEY=VALUE entries: one a line when it holds a line break
    (a value may then hold commas), else separated by commas; blank entries skipped."""
    entries = value.split("\n") if "\n" in value else value.split(",")
    return [entry for entry in entries if entry.strip()]
