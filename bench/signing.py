"""What signing costs: `python -m bench.signing [--writes 200]` (a script, not a test).

Throw-away keys (ssh-keygen ed25519, gpg ed25519) in a temporary folder, then:

- one signature: `Signer.sign` of a commit-sized payload (SSH in-process; OpenPGP one
  `gpg --detach-sign` through the signer's gpg-agent), and for comparison one
  `ssh-keygen -Y sign` process as git would run it; median and 90th percentile;
- one write through the writer lane on an embedded store (a ConfigMap bundle, answered once
  published), unsigned, SSH-signed and OpenPGP-signed, the three interleaved write by write
  so a slow stretch of the machine hits each alike; mean and median per write.

Every commit is signed (one per accepted change, follow-ups and migrations included), so the
cost is per commit, in the writer lane.
"""

from __future__ import annotations

import argparse
import functools
import os
import subprocess
import tempfile
import time
from pathlib import Path

from app.http.answers import answer
from bench.timing import summary, timed
from gitops import planner
from gitops.bundle import parse_bundle
from gitops.store import EmbeddedStore
from gitops.store.signing import Signer, open_signer
from gitops.writer import Writer
from tests import support

PAYLOAD = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n" + b"x" * 1500


def _keys(folder: Path) -> tuple[Path, Path, Path]:
    ssh = folder / "ssh-key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(ssh)], check=True)
    home = folder / "gnupg"
    home.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    subprocess.run(["gpg", "--batch", "--quiet", "--passphrase", "", "--quick-gen-key",
                    "bench <bench@example.invalid>", "ed25519", "sign", "never"], env=env, check=True)
    pgp = folder / "pgp-key.asc"
    pgp.write_bytes(subprocess.run(["gpg", "--batch", "--armor", "--export-secret-keys"], env=env,
                                   check=True, capture_output=True).stdout)
    return ssh, pgp, home


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signatures", type=int, default=200)
    parser.add_argument("--writes", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-signing-", dir="/tmp") as tmp:
        folder = Path(tmp)
        ssh, pgp, home = _keys(folder)
        signers: dict[str, Signer] = {"ssh": open_signer("ssh", ssh),
                                      "openpgp": open_signer("openpgp", pgp)}
        try:
            sign_ms: dict[str, list[float]] = {name: [] for name in signers}
            for _ in range(args.signatures):
                for name, signer in signers.items():
                    sign_ms[name].append(timed(functools.partial(signer.sign, PAYLOAD)))
            keygen = ["ssh-keygen", "-Y", "sign", "-n", "git", "-f", str(ssh)]
            sign_ms["ssh-keygen process"] = [
                timed(functools.partial(subprocess.run, keygen, input=PAYLOAD, check=True,
                                         capture_output=True))
                for _ in range(args.signatures)]
            print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} cpus")
            for name, ms in sign_ms.items():
                print(f"one {name} signature: {summary(ms, 1)}")
            stores: dict[str, EmbeddedStore] = {}
            lanes: dict[str, Writer] = {}
            for name in ("unsigned", *signers):
                stores[name] = EmbeddedStore(folder / f"{name}.git")
                stores[name].signer = signers.get(name)
                lanes[name] = Writer(stores[name])
            write_ms: dict[str, list[float]] = {name: [] for name in lanes}
            for writer in lanes.values():
                writer.submit(functools.partial(planner.plan_put_destination, name="w",
                                                labels={"a": "b"}, path=None, actor="bench")
                              ).result(timeout=60)
            for i in range(args.writes):
                body = support.payload("p", f"ns/r{i}", {"cm.yaml": support.config_map(f"c{i}")},
                                       selectors={"a": "b"})
                bundle = parse_bundle(body)
                for name, writer in lanes.items():
                    operation = functools.partial(planner.plan_apply, bundle=bundle, actor="bench")
                    start = time.perf_counter()
                    status, _ = answer(writer.submit(operation).result(timeout=60))
                    write_ms[name].append((time.perf_counter() - start) * 1000)
                    assert status == 200, status
            for name, ms in write_ms.items():
                print(f"one write, {name}: {summary(ms, 1)}")
            for name, writer in lanes.items():
                stores[name].signer = None  # the signers are closed once, below
                writer.close()
        finally:
            for signer in signers.values():
                signer.close()
            subprocess.run(["gpgconf", "--kill", "gpg-agent"], env={**os.environ, "GNUPGHOME": str(home)},
                           check=False)


if __name__ == "__main__":
    main()
