from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Finding:
    path: str      # field path as the API server writes it: "spec.nodeSets[0].count"; "" = the object
    reason: str    # one line
    warning: bool = False   # True: could not decide; never a refusal
