"""JSON merge patch (RFC 7386), as the apiserver applies `application/merge-patch+json` to an object.

The fakes of the reconcile tests apply status patches through this, so that a nested patch that would wipe
sibling fields (or leave a key the operator meant to delete) on a real apiserver does so here too.
"""

from __future__ import annotations

from typing import Any


def apply(target: Any, patch: Any) -> Any:
    """The result of merge-patching `target` with `patch` (RFC 7386 section 2, MergePatch; neither is mutated).

    An object patch merges key by key, recursively; a null member deletes that key; anything else (arrays,
    strings, numbers, null itself) replaces the target whole. A non-object target patched with an object is
    treated as an empty object first."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = apply(out.get(key), value)
    return out
