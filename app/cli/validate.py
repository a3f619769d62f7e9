"""`statewriter validate DIR`: a pipeline's output checked as a destination's API server
would check it, nothing written (docs/reference.md sections 8 and 11), for the pipeline's own CI.

Against a destination of a running service (`--destination`, and `--url` or
`STATEWRITER_URL`; the token from `STATEWRITER_TOKEN`), which knows its CRDs, its Kubernetes
version and its namespaces: DIR is sent as `push` sends it, to
`POST /v1/destinations/{name}/validate`. Or offline, without a
service: against a Kubernetes version (`--kubernetes-version`), the CRDs in `--crds` files,
the API groups in `--api` and the namespaces in `--namespace` (none: not declared, so only
warned about).

Prints one line per finding (`file: document N: object: field: reason`), then the warnings.
Exit codes: 0 when the destination would take it, 1 when it would refuse it (or the service
answered otherwise), 2 on a usage problem.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.cli.client import (
    add_retries_flag,
    add_url_flag,
    auth_headers,
    call,
    given_url,
    json_body,
    print_refusal,
)
from app.cli.exits import UsageError, describe
from app.cli.push import pack, push_identity
from gitops.errors import InvalidObject, StatewriterError

if TYPE_CHECKING:
    from gitops.bundle import Bundle


def add_parser(commands: Any) -> None:
    validate = commands.add_parser(
        "validate", help="check a pipeline's output as a destination's API server would",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    validate.add_argument("dir", type=Path, metavar="DIR",
                          help="the pipeline's folder (output/, metadata/)")
    add_url_flag(validate, "with --destination, the service")
    validate.add_argument("--destination",
                          help="check against this destination of the service (default: none, "
                               "offline)")
    validate.add_argument("--kubernetes-version",
                          help="offline: the cluster's Kubernetes version (default: the newest "
                               "supported)")
    validate.add_argument("--crds", type=Path, nargs="*", default=[], metavar="FILE",
                          help="offline: files of the CRDs the cluster has (default: none)")
    validate.add_argument("--api", action="append", default=[], metavar="GROUP",
                          help="offline: an API group (or group/version/Kind) the cluster "
                               "serves besides the built-in ones (repeatable; default: none)")
    validate.add_argument("--namespace", action="append", metavar="NAME",
                          help="offline: a namespace the cluster has (repeatable; default: none "
                               "declared, so namespaces are only warned about)")
    validate.add_argument("--promise", default="validate",
                          help="the promise (default: %(default)s)")
    validate.add_argument("--request", metavar="NS/NAME", help="the request (default: none)")
    validate.add_argument("--pipeline", default=None, help="the pipeline (default: default)")
    validate.add_argument("--promise-generation", type=int, default=None, metavar="N",
                          help="the promise generation that rendered the output (default: none)")
    add_retries_flag(validate, 2)


def validate_command(args: argparse.Namespace) -> int:
    try:
        if args.destination:
            return _online(args)
        if args.url:
            raise UsageError("give --url and --destination together (or neither, offline)")
        return _offline(args)
    except UsageError as error:
        raise UsageError(f"validate: {error}") from None
    except OSError as error:
        raise UsageError(f"validate: cannot read {describe(error)}") from None


def _online(args: argparse.Namespace) -> int:
    base = given_url(args.url)
    if base is None:
        raise UsageError("--destination needs --url (or STATEWRITER_URL): the service it is on")
    url = f"{base}/v1/destinations/{args.destination}/validate"
    params = list(push_identity(args).items())
    headers = {"Content-Type": "application/gzip", "Accept": "application/json", **auth_headers()}
    response = call("validate", "POST", url, int(args.retries), content=pack(Path(args.dir)),
                    params=params, headers=headers)
    if response is None:
        return 1
    body = json_body(response)
    if response.status_code == 200:
        print(f"{args.dir}: the API server of destination {args.destination} would take its "
              f"{body.get('objects', 0)} object(s)")
        _print_warnings(body.get("warnings"))
        return 0
    if response.status_code == 422 and body.get("error") == "InvalidObject":
        _print_findings(body.get("findings"))
        return 1
    return print_refusal("validate", response)


def _offline(args: argparse.Namespace) -> int:
    # the planner and the schemas load here, not for every command
    from gitops.planner.check import check_offline
    from gitops.planner.destinations import Cluster

    bundle = _bundle(args)
    cluster = Cluster(args.kubernetes_version, args.api or None, args.namespace)
    crds = _crds(args.crds)  # a UsageError, not the refusal below
    try:
        checked = check_offline(bundle, crds, cluster)
    except InvalidObject as refused:
        _print_findings(refused.detail.get("findings"))
        return 1
    except StatewriterError as refused:
        print(f"statewriter: validate: {refused.message}", file=sys.stderr)
        return 1
    print(f"{args.dir}: an API server of Kubernetes {args.kubernetes_version or 'newest'} "
          f"would take its {checked.objects} object(s)")
    _print_warnings(list(checked.warnings))
    return 0


def _bundle(args: argparse.Namespace) -> Bundle:
    from gitops.bundle import Limits
    from gitops.owner import make_owner
    from gitops.tarbundle import read_tar_bundle

    identity = push_identity(args)
    try:
        owner = make_owner(identity["promise"], identity.get("namespace"), identity.get("name"),
                           identity["pipeline"])
        return read_tar_bundle(pack(Path(args.dir)), owner, Limits(),
                               generation=args.promise_generation)
    except StatewriterError as error:
        raise UsageError(error.message) from None


def _crds(files: list[Path]) -> Bundle | None:
    from gitops.bundle import Limits, build_bundle
    from gitops.owner import make_owner

    if not files:
        return None
    owner = make_owner("crds", None, None, None)
    texts = {f"{i:03d}-{path.name}": path.read_text() for i, path in enumerate(files)}
    try:
        return build_bundle(owner, {}, texts, None, None, Limits())
    except StatewriterError as error:
        raise UsageError(f"--crds: {error.message}") from None


def _print_findings(findings: object) -> None:
    for finding in findings if isinstance(findings, list) else []:
        if isinstance(finding, dict):
            print(f"{finding.get('file')}: document {finding.get('document')}: "
                  f"{finding.get('object')}: {finding.get('field') or '(the object)'}: "
                  f"{finding.get('reason')}")


def _print_warnings(warnings: object) -> None:
    for warning in warnings if isinstance(warnings, list) else []:
        print(f"warning: {warning}")
