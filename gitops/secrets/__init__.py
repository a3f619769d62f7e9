"""Secrets encrypted for their destinations in the SOPS format (docs/reference.md section 9).

    envelope.py which documents are Secrets, and which a pipeline encrypted itself
    sops.py     the SOPS file format (AES-256-GCM values, age-wrapped data key, MAC)
    sealer.py   the service's age identity: seal, open, keyed digests; recipient checks
"""

from gitops.errors import IdentityError, SopsError
from gitops.secrets.envelope import is_secret, is_secret_document
from gitops.secrets.sealer import Sealer, check_recipients, is_sealed

__all__ = ["IdentityError", "Sealer", "SopsError", "check_recipients", "is_sealed", "is_secret",
           "is_secret_document"]
