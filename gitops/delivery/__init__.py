"""Delivery status (docs/reference.md section 12): what Flux on each destination reports of the
commits statewriter made, kept on a branch of its own, and what it means for each request."""
