"""Secrets encrypted for their destination (CONTRACT section 9): the very last step of
rendering an object for a destination or for `.statewriter/bundles`, re-encryption when a
destination's recipients change, and the bundle digest a Secret's values must not leak
through.

SOPS output differs on every run, so whether a committed ciphertext still holds what is
sent is decided by keyed digests (`Held.sealed`), never by the ciphertext: the same
plaintext for the same recipients keeps the committed bytes (no commit), and two owners
sending the same Secret share one file. A Secret the pipeline encrypted itself (a document
with a top-level `sops` block) is written as sent.
"""

from __future__ import annotations

from dataclasses import replace

from gitops.bundle import Bundle
from gitops.errors import EncryptionRequired, InvalidBundle
from gitops.identity import Identity
from gitops.index import Held, Holders, ObjectKey
from gitops.layout import Destination
from gitops.normalize import Rendering
from gitops.planner.draft import Draft, Policy
from gitops.planner.ownership import locate, set_record
from gitops.secrets import Sealer, SopsError, is_sealed, is_secret
from gitops.tree import blob_id


def _is_secret(identity: Identity) -> bool:
    return is_secret(identity.group, identity.kind)


def _sealer(policy: Policy, why: str) -> Sealer:
    if policy.secrets is None:
        raise EncryptionRequired(f"{why}, and the service has no secrets.identityFile")
    return policy.secrets


def for_destination(
    draft: Draft, key: ObjectKey, rendering: Rendering, holders: Holders | None
) -> tuple[Rendering, str | None]:
    """`rendering` as written to its destination, and the keyed digest of its plaintext when
    it is encrypted. A Secret for a destination without recipients is refused when the
    service requires encryption."""
    if not _is_secret(rendering.identity) or is_sealed(rendering.content):
        return rendering, None  # already SOPS-encrypted by the pipeline: written as sent
    destination = draft.destination(key.destination)
    if not destination.recipients:
        if draft.policy.secrets is not None and draft.policy.secrets.require_encryption:
            raise EncryptionRequired(
                f"{rendering.identity}: destination {destination.name} has no encryption "
                "recipients and the service requires Secrets to be encrypted "
                "(secrets.requireEncryption)",
                object=str(rendering.identity), destination=destination.name)
        return rendering, None
    sealer = _sealer(draft.policy, f"destination {destination.name} encrypts Secrets")
    sealed = sealer.digest(rendering.content, destination.recipients)
    if holders:
        path = locate(draft, key)
        current = draft.tree.blob_id(path.path) if path else None
        if path is not None and any(h.sealed == sealed and h.blob == current
                                    for h in holders.values()):
            content = draft.tree.read(path.path)
            if content is not None and current is not None:
                sealer.observe(destination.name, "kept")
                return replace(rendering, content=content, blob=current), sealed
    content = _seal(sealer, rendering, destination.recipients, destination.name)
    return replace(rendering, content=content, blob=blob_id(content)), sealed


def _seal(
    sealer: Sealer, rendering: Rendering, recipients: tuple[str, ...], destination: str = ""
) -> bytes:
    try:
        return sealer.seal(rendering.content, recipients, destination)
    except SopsError as error:
        raise InvalidBundle(f"{rendering.identity} cannot be encrypted: {error}",
                            object=str(rendering.identity)) from None


def for_state(draft: Draft, path: str, rendering: Rendering) -> bytes:
    """What a stored bundle keeps of a document at `path`: a Secret encrypted for the service
    alone (its committed bytes kept when they decrypt to the same plaintext)."""
    sealer = draft.policy.secrets
    if sealer is None or not _is_secret(rendering.identity) or is_sealed(rendering.content):
        return rendering.content
    current = draft.tree.read(path)
    if current is not None and sealer.sealed_for_me(current) and sealer.open(current) == rendering.content:
        sealer.observe("", "kept")
        return current
    return _seal(sealer, rendering, ())


def recorded_digest(policy: Policy, bundle: Bundle) -> str:
    """The digest an owner record and its trailer keep: keyed when the bundle holds a Secret
    and the service has an identity (a plain hash of a short secret can be brute-forced)."""
    if policy.secrets is None or not any(
            is_secret(_group(d.doc), d.doc.get("kind", "")) for d in bundle.documents):
        return bundle.digest
    return policy.secrets.keyed(bundle.digest)


def _group(doc: dict[str, object]) -> str:
    api_version = str(doc.get("apiVersion", ""))
    return api_version.rpartition("/")[0]


def reseal_destination(draft: Draft, destination: Destination) -> None:
    """Every Secret held in `destination` written again for its (changed) recipients, in
    clear when it has none left; one pass over the owners (a rotation is rare)."""
    if not draft.index.holds_kind(destination.name, ("", "Secret")):
        return
    sealer = _sealer(draft.policy, f"destination {destination.name} holds encrypted Secrets")
    done: dict[Identity, tuple[bytes, str, str | None]] = {}
    for record in sorted(draft.index.owners.values(), key=lambda r: r.serial):
        holds = record.objects.get(destination.name)
        if not holds or not any(_is_secret(h.identity) for h in holds):
            continue
        updated: list[Held] = []
        writes: dict[ObjectKey, bytes] = {}
        for held in holds:
            if not _is_secret(held.identity):
                updated.append(held)
                continue
            key = ObjectKey(destination.name, held.identity)
            if held.identity not in done:
                done[held.identity] = _resealed(draft, sealer, key, held, destination.recipients)
            content, blob, sealed = done[held.identity]
            updated.append(replace(held, blob=blob, sealed=sealed))
            writes[key] = content
        objects = {**record.objects, destination.name: tuple(updated)}
        set_record(draft, record.owner, record.with_(objects=objects), writes)


def _resealed(
    draft: Draft, sealer: Sealer, key: ObjectKey, held: Held, recipients: tuple[str, ...]
) -> tuple[bytes, str, str | None]:
    location = locate(draft, key)
    current = draft.tree.read(location.path) if location else None
    assert current is not None, key
    if held.sealed is None and is_sealed(current):
        return current, blob_id(current), None  # encrypted by the pipeline: as sent
    try:
        plain = sealer.open(current) if held.sealed else current
    except SopsError:
        raise InvalidBundle(
            f"{key.identity} in destination {key.destination} cannot be decrypted with the "
            "service's identity (was secrets.identityFile replaced?); post its bundle again "
            "to encrypt it anew", object=str(key.identity), destination=key.destination,
        ) from None
    if not recipients:
        return plain, blob_id(plain), None
    content = sealer.seal(plain, recipients, key.destination)
    return content, blob_id(content), sealer.digest(plain, recipients)
