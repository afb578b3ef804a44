"""Bytes on disk or in a bucket: content-addressed blobs, MD5 digests, the stat cache and the download cache.

Nothing heavy is imported here; import the module you need::

    >>> from wandb_dagster.storage.backend import open_blob_store    # doctest: +SKIP
    >>> from wandb_dagster.storage.hashing import hash_file, hex_to_b64
    >>> from wandb_dagster.storage.statcache import StatCache        # doctest: +SKIP
    >>> from wandb_dagster.storage.cache import DownloadCache        # doctest: +SKIP
"""
