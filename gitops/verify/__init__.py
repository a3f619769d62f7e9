"""`statewriter verify`: the invariants of docs/reference.md section 3, checked on any tree.

Findings are plain strings, one per problem, each starting with the repository path it is
about. One module per concern:

- `sources`: where the tree comes from (a checkout, a clone of a bare repository or URL);
- `state`: the layout version and the records under `.statewriter/`;
- `folders`: file names, path segments and kustomization listings;
- `objects`: the objects in the files against the owners in the index;
- `builds`: `kubectl kustomize` on every section, in pieces when large, in parallel;
- `scalars`: plain scalars that YAML readers disagree on (invariant 8);
- `run`: the checks run over one tree, in order.
"""

from gitops.verify.run import verify_tree
from gitops.verify.sources import verify_path, verify_target

__all__ = ["verify_path", "verify_target", "verify_tree"]
