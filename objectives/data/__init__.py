"""One labelled text-classification dataset: its sources, labels, stratified splits, the
students' transfer text (unlabelled and augmented) and tokenisation.

Public names are imported on first use (:mod:`kdtune.lazy`).
"""

from kdtune.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "augment_sentences": ".augment",
    "lookup_words": ".augment",
    "lowercases": ".augment",
    "neighbour_table": ".augment",
    "split_word": ".augment",
    "DataConfig": ".dataset",
    "NonEmptyStr": ".dataset",
    "SPLIT_NAMES": ".dataset",
    "Splits": ".dataset",
    "TRANSFER": ".dataset",
    "check_labels_match": ".dataset",
    "content_fingerprint": ".dataset",
    "load_splits": ".dataset",
    "Part": ".labels",
    "label_ids": ".labels",
    "read_part": ".labels",
    "ENV_SDIST": ".polarity",
    "LABEL_NAMES": ".polarity",
    "N_PER_LABEL": ".polarity",
    "polarity_csv": ".polarity",
    "polarity_dataset": ".polarity",
    "polarity_reviews_txt": ".polarity",
    "read_polarity_rows": ".polarity",
    "BUILTIN_SOURCES": ".sources",
    "LOCAL_SUFFIXES": ".sources",
    "pool_split_name": ".sources",
    "read_source": ".sources",
    "DEFAULT_HELDOUT_FRACTION": ".splitting",
    "assign_rows": ".splitting",
    "build_split": ".splitting",
    "stratified": ".splitting",
    "data_collator": ".tokens",
    "tokenize": ".tokens",
    "TransferConfig": ".transfer",
    "read_unlabelled": ".transfer",
    "transfer_set": ".transfer",
})
