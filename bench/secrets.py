"""What encrypting Secrets costs: `python -m bench.secrets [--writes 300]` (a script, not a
test).

- one Secret (a rendered `v1/Secret` with two `data` and two `stringData` values): sealed
  for one destination recipient and the service (`Sealer.seal`: load, a fresh data key,
  AES-256-GCM per value, the MAC, two age wraps, dump), its keyed digest (`Sealer.digest`),
  and decrypted again (`Sealer.open`, what placing a stored bundle does); median and p90;
- writes through the writer lane on embedded stores, one new request each, answered once
  published, in three lanes interleaved write by write so that a slow stretch of the machine
  hits each alike: a bundle of four ConfigMaps ("no Secret"), the same bundle with one of
  them a Secret for a destination with recipients ("encrypted Secret"), and that bundle for
  a destination without recipients ("clear Secret"); then each request again with a
  ConfigMap changed and the Secret the same (a commit whose Secret file stays: the keyed
  digest keeps the ciphertext), then posted again unchanged (no commit). Bundles per second
  are one over the mean time of a write; the ratios are of the same run and phase.
"""

from __future__ import annotations

import argparse
import base64
import functools
import os
import statistics
import tempfile
import time
from pathlib import Path

import pyrage

from app.http.answers import answer
from bench.timing import summary, timed
from gitops import planner
from gitops.bundle import parse_bundle
from gitops.secrets import Sealer
from gitops.store import EmbeddedStore
from gitops.writer import Writer
from gitops.yamldocs import dump_document
from tests import support

LANES = ("no Secret", "encrypted Secret", "clear Secret")


def _secret(i: int) -> str:
    return support.manifest(
        "v1", "Secret", f"db-{i}", type="Opaque",
        data={"password": base64.b64encode(os.urandom(24)).decode(),
              "tls.key": base64.b64encode(os.urandom(1200)).decode()},
        stringData={"user": f"app-{i}", "url": f"postgres://db-{i}.default.svc:5432/app"})


def _files(i: int, secret: str | None, version: int = 0) -> dict[str, str]:
    files = {f"cm{n}.yaml": support.config_map(f"c{i}-{n}", value=f"value {n} of {i}, {version}")
             for n in range(3)}
    files["last.yaml"] = secret or support.config_map(f"c{i}-3")
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secrets", type=int, default=500, help="Secrets sealed one by one")
    parser.add_argument("--writes", type=int, default=300, help="writes per lane")
    args = parser.parse_args()
    service = pyrage.x25519.Identity.generate()
    worker = str(pyrage.x25519.Identity.generate().to_public())
    sealer = Sealer(str(service))
    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} cpus")

    rendered = [dump_document(parse_bundle(support.payload("p", "ns/r", {"s.yaml": _secret(i)}))
                              .documents[0].doc) for i in range(args.secrets)]
    seal_ms, digest_ms, open_ms = [], [], []
    sealed = b""
    for content in rendered:
        start = time.perf_counter()
        sealed = sealer.seal(content, [worker])
        seal_ms.append((time.perf_counter() - start) * 1000)
        digest_ms.append(timed(functools.partial(sealer.digest, content, [worker])))
        open_ms.append(timed(functools.partial(sealer.open, sealed)))
    print(f"one Secret ({len(rendered[-1])} bytes rendered, {len(sealed)} sealed):")
    print(f"  seal: {summary(seal_ms)}")
    print(f"  keyed digest: {summary(digest_ms)}")
    print(f"  open: {summary(open_ms)}")

    policy = planner.Policy(secrets=sealer)
    with tempfile.TemporaryDirectory(prefix="bench-secrets-", dir="/tmp") as tmp:
        lanes = {name: Writer(EmbeddedStore(Path(tmp) / f"{i}.git")) for i, name in enumerate(LANES)}
        for name, writer in lanes.items():
            recipients = [worker] if name == "encrypted Secret" else None
            writer.submit(functools.partial(planner.plan_put_destination, name="w", labels={"a": "b"},
                                            path=None, actor="bench", policy=policy,
                                            recipients=recipients)).result(timeout=60)
        phases = ("new request", "update, Secret unchanged", "identical re-post")
        ms: dict[tuple[str, str], list[float]] = {(p, n): [] for p in phases for n in lanes}
        secrets = [_secret(i) for i in range(args.writes)]
        for phase, version, expect_change in zip(phases, (0, 1, 1), (True, True, False),
                                                 strict=True):
            for i in range(args.writes):
                for name, writer in lanes.items():
                    files = _files(i, None if name == "no Secret" else secrets[i], version)
                    bundle = parse_bundle(support.payload("p", f"ns/r{i}", files, selectors={"a": "b"}))
                    operation = functools.partial(planner.plan_apply, bundle=bundle,
                                                  actor="bench", policy=policy)
                    start = time.perf_counter()
                    status, body = answer(writer.submit(operation).result(timeout=60))
                    ms[phase, name].append((time.perf_counter() - start) * 1000)
                    assert status == 200 and body["changed"] is expect_change, (status, body)
        for phase in phases:
            base = statistics.fmean(ms[phase, "no Secret"])
            for name in lanes:
                mean = statistics.fmean(ms[phase, name])
                print(f"{phase}, {name}: {1000 / mean:.0f} bundles/s, {summary(ms[phase, name])}, "
                      f"{mean / base:.2f}x the time without a Secret")
        for writer in lanes.values():
            writer.close()


if __name__ == "__main__":
    main()
