"""`statewriter verify`: the invariants of a state store (a checkout, a bare repository or a
git URL) checked, one line per broken one; exit 1 when any is."""

from __future__ import annotations

import argparse
import os
from typing import Any

from app.cli.exits import UsageError
from gitops.redact import redact, redact_url


def add_parser(commands: Any) -> None:
    verify = commands.add_parser("verify", help="check the invariants of a checkout or git URL")
    verify.add_argument("target", nargs="?", default=".", metavar="PATH | GIT_URL",
                        help="a checkout, a bare repository or a git URL to clone, with the "
                             "token from $STATEWRITER_TOKEN (default: %(default)s)")
    verify.add_argument("--no-kustomize", action="store_true",
                        help="skip the `kubectl kustomize` builds (default: build every section)")
    verify.add_argument("--branch", help="the branch to clone (default: the remote's HEAD)")
    verify.add_argument("--kubernetes-version", help="validate objects against this Kubernetes "
                                                     "version (default: each destination's, "
                                                     "else the newest supported)")


def verify_command(args: argparse.Namespace) -> int:
    from gitops.verify import verify_target

    token = os.environ.get("STATEWRITER_TOKEN", "").strip() or None
    version = args.kubernetes_version
    if version is not None:
        from gitops.destination import kubernetes_version

        try:
            version = kubernetes_version(version)
        except ValueError as error:
            raise UsageError(f"verify: --kubernetes-version {error}") from None
    findings = verify_target(args.target, kustomize=not args.no_kustomize, branch=args.branch,
                             token=token, kubernetes_version=version)
    for finding in findings:
        print(redact(finding, [token] if token else []))
    if not findings:
        print(f"{redact_url(args.target)}: ok")
    return 1 if findings else 0
