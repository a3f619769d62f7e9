"""CPU of one schema check, per object: `python -m bench.schema_cpu [--eck-crds DIR]` (a
script, not a test: timings belong here, not in the suite).

Real objects of the test fixtures (two Deployments, ECK's example Elasticsearch against the
example's CRD, a Redis against its operator's CRD) are checked `--rounds` times against their
compiled schemas; the budget is about 0.1 ms for a small object. With `--eck-crds DIR` (ECK's
own CRDs, elastic/cloud-on-k8s `config/crds/v1/resources`, under the Elastic License 2.0 and
so not in the repository), the real Elasticsearch CRD (about 1.5 MB of schema) is compiled,
a production-shaped cluster is checked against it (no finding) and three broken fields are
refused at exactly their paths.
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path
from typing import Any

import yaml

from gitops.validate import builtin
from gitops.validate.schema import Node, check, compile_crd
from tests.test_validate_builtin import FIXTURES, documents, real, schema_of


def cpu_per_check(doc: dict[str, Any], node: Node, rounds: int) -> float:
    check(doc, node)
    started = time.process_time()
    for _ in range(rounds):
        check(doc, node)
    return (time.process_time() - started) / rounds


def real_objects(rounds: int) -> None:
    for kind, name in (("Deployment", "web"), ("Deployment", "api"), ("Elasticsearch", "example"),
                       ("Redis", "cache")):
        doc = real(kind, name)
        node = schema_of(doc)
        assert node is not None, f"{kind}/{name}: no schema"
        print(f"{kind}/{name}: {cpu_per_check(doc, node, rounds) * 1e6:.0f} us a check")


def eck_elasticsearch(crds: Path, rounds: int) -> None:
    [path] = crds.glob("*elasticsearch.k8s.elastic.co_elasticsearches.yaml")
    crd = next(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    [served] = [version for version in crd["spec"]["versions"] if version["name"] == "v1"]
    started = time.process_time()
    node = compile_crd(served["schema"]["openAPIV3Schema"], status_subresource=True,
                       object_meta=builtin.object_meta(builtin.NEWEST))
    compiled = time.process_time() - started
    cluster = next(doc for _, doc in documents(FIXTURES / "elasticsearch-sample.yaml"))
    assert check(cluster, node) == [], "a production-shaped cluster must be accepted"
    broken = copy.deepcopy(cluster)
    broken["spec"]["nodeSets"][0]["count"] = "three"
    broken["spec"]["nodeSets"][1]["podTemplate"]["spec"]["containers"][0]["resources"]["limits"][
        "memory"] = "8 GB"
    broken["spec"]["http"]["tls"]["selfSignedCertificate"]["subjectAltNames"][0]["dnsName"] = "x"
    found = {(finding.path, finding.warning) for finding in check(broken, node)}
    assert found == {
        ("spec.nodeSets[0].count", False),
        ("spec.nodeSets[1].podTemplate.spec.containers[0].resources.limits[memory]", False),
        ("spec.http.tls.selfSignedCertificate.subjectAltNames[0].dnsName", False)}, found
    print(f"ECK Elasticsearch CRD: compiled in {compiled * 1e3:.0f} ms, "
          f"{cpu_per_check(cluster, node, rounds) * 1e6:.0f} us a check")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300, help="checks per object (default 300)")
    parser.add_argument("--eck-crds", type=Path, metavar="DIR",
                        help="ECK's CRDs (config/crds/v1/resources) for the real Elasticsearch "
                             "CRD (default: not measured)")
    args = parser.parse_args()
    real_objects(args.rounds)
    if args.eck_crds is not None:
        eck_elasticsearch(args.eck_crds, args.rounds)


if __name__ == "__main__":
    main()
