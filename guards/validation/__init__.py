"""Post-execution validation: duplicates, near-duplicates and runaway output.

Modules, from the pure core out:

* :mod:`~guards.validation.normalize`: the normalised text and its exact fingerprint;
* :mod:`~guards.validation.features`: the weighted features a sketch is made of (its
  parts: :mod:`~guards.validation.words`, :mod:`~guards.validation.quantities`,
  :mod:`~guards.validation.markup`);
* :mod:`~guards.validation.minhash`, :mod:`~guards.validation.simhash`: the sketches, and
  :mod:`~guards.validation.sketchers`: how the index uses them;
* :mod:`~guards.validation.index`: the in-memory banded index of one stream;
* :mod:`~guards.validation.types`: batches, verdicts and stored rejections;
* :mod:`~guards.validation.repo`: the SQL;
* :mod:`~guards.validation.batch_run`: one batch's decisions and rejection rows;
* :mod:`~guards.validation.window`, :mod:`~guards.validation.streams`: a stream's
  window read into an index, and the bounded cache of those indexes;
* :mod:`~guards.validation.engine`: :class:`Validator`, the operation ``POST
  /v1/validations`` runs inside ``store.write``, and :func:`prune`.

Example:
    >>> from guards.config import Validation
    >>> Validator(Validation()).config.window_days
    7
"""

from __future__ import annotations

from guards.validation.engine import Pruned, Validator, prune
from guards.validation.repo import rejections
from guards.validation.types import Batch, Item, Outcome, Rejected, Rejection

__all__ = [
    "Batch",
    "Item",
    "Outcome",
    "Pruned",
    "Rejected",
    "Rejection",
    "Validator",
    "prune",
    "rejections",
]
