"""Secrets encrypted for their destination (docs/reference.md section 9): the very last step of
rendering an object for a destination or for `.statewriter/bundles`, re-encryption when a
destination's recipients change, and the bundle digest a Secret's values must not leak
through.

SOPS output differs on every run, so whether a committed ciphertext still holds what is
sent is decided by keyed digests (`Held.sealed`), never by the ciphertext: the same
plaintext for the same recipients keeps the committed bytes (no commit), and two owners
sending the same Secret share one file. A Secret the pipeline encrypted itself (a whole SOPS
envelope, `gitops.secrets.envelope`) is written as sent, in the order it was sent, when the
destination's Flux can decrypt it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from gitops.bundle import Bundle, SourceDocument
from gitops.destination import Destination
from gitops.errors import Conflict, EncryptionRequired, InvalidBundle, SopsError
from gitops.identity import Identity
from gitops.index import Held, Holders, ObjectKey
from gitops.normalize import Rendering
from gitops.planner.draft import Draft, Policy
from gitops.planner.ownership import locate, set_record
from gitops.secrets import Sealer, is_sealed, is_secret, is_secret_document
from gitops.secrets.envelope import age_recipients, claims_encryption
from gitops.secrets.sops import mac_inputs
from gitops.tree import blob_id
from gitops.yamldocs import ParseLimits, load_documents


def _is_secret(identity: Identity) -> bool:
    return is_secret(identity.group, identity.kind)


def _sealer(policy: Policy, why: str) -> Sealer:
    if policy.secrets is None:
        raise EncryptionRequired(f"{why}, and the service has no secrets.identityFile")
    return policy.secrets


def for_destination(
    draft: Draft, key: ObjectKey, rendering: Rendering, holders: Holders | None,
    source: SourceDocument,
) -> tuple[Rendering, str | None]:
    """`rendering` as written to its destination, and the keyed digest of its plaintext when
    it is encrypted. A Secret for a destination without recipients is refused when the
    service requires encryption; one its pipeline encrypted is written as sent, if it can be
    decrypted there (`_as_sent`)."""
    if not _is_secret(rendering.identity):
        return rendering, None
    destination = draft.destination(key.destination)
    if claims_encryption(source.doc):
        _check_as_sent(draft, destination, rendering, source)
        return rendering, None
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


def _check_as_sent(
    draft: Draft, destination: Destination, rendering: Rendering, source: SourceDocument
) -> None:
    """A Secret its pipeline SOPS-encrypted (a whole envelope: `envelope_problem` passed when
    it came in) is written as sent, so its MAC must still hold after rendering, and Flux on
    the destination must be able to decrypt it: encrypted for every recipient the
    destination lists. A destination without recipients has no decryption in its
    Kustomization: accepted with a warning (its owner may decrypt otherwise)."""
    def refuse(reason: str) -> InvalidBundle:
        return InvalidBundle(
            f"{source.file}: document {source.index}: {rendering.identity}: encrypted by the "
            f"pipeline, but {reason}", file=source.file, document=source.index,
            object=str(rendering.identity), destination=destination.name, reason=reason)

    (written,) = load_documents(rendering.content.decode(), _RENDERED)
    changed = _changed_by_rendering(source.doc, written)
    if changed is not None:
        raise refuse(f"statewriter would {changed}, which breaks its SOPS MAC: set it before "
                     "encrypting")
    sealer = draft.policy.secrets
    if sealer is not None and sealer.recipient in age_recipients(source.doc):
        try:
            sealer.open_document(written)
        except SopsError as error:
            raise refuse(f"it does not decrypt with the service's identity ({error})") from None
    if not destination.recipients:
        draft.notes.warn(
            f"{source.file}: document {source.index}: {rendering.identity} is SOPS-encrypted, "
            f"but destination {destination.name} lists no encryption recipients, so its Flux "
            "Kustomization decrypts nothing: Flux applies it only if that worker decrypts "
            "SOPS otherwise")
        return
    missing = sorted(set(destination.recipients) - age_recipients(source.doc))
    if missing:
        raise refuse(f"not for destination {destination.name}'s recipient(s) "
                     f"{', '.join(missing)}: Flux there could not decrypt it")


_RENDERED = ParseLimits(max_depth=400, max_nodes=10**9)  # renderings passed the limits already


def _changed_by_rendering(sent: dict[str, Any], written: dict[str, Any]) -> str | None:
    """What rendering changed that a SOPS MAC covers (its values, in order), or None."""
    try:
        if mac_inputs(sent) == mac_inputs(written):
            return None
    except SopsError as error:
        return f"write a value sops cannot hash ({error})"
    meta, before = written.get("metadata") or {}, sent.get("metadata") or {}
    if meta.get("namespace") != before.get("namespace"):
        return f"add metadata.namespace ({meta.get('namespace')}) to it"
    if meta.get("annotations") != before.get("annotations"):
        return "change its annotations (its own are removed, prune protection added)"
    return "change its values"


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
    if policy.secrets is None or not any(is_secret_document(d.doc) for d in bundle.documents):
        return bundle.digest
    return policy.secrets.keyed(bundle.digest)


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
    if held.sealed is None and is_sealed(current):  # encrypted by the pipeline: as sent
        (doc,) = load_documents(current.decode(), _RENDERED)
        missing = sorted(set(recipients) - age_recipients(doc))
        if missing:
            raise Conflict(
                f"{key.identity} in destination {key.destination} was encrypted by its "
                f"pipeline, not for recipient(s) {', '.join(missing)}: Flux there could not "
                "decrypt it. Post its bundle again encrypted for them first",
                object=str(key.identity), destination=key.destination,
                owners=tuple(sorted(draft.index.objects.get(key) or ())))
        return current, blob_id(current), None
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
