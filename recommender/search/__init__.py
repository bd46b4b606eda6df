"""The all-users top-N search behind :func:`recommender.topk.top_k_cosine`.

``exact`` (BLAS blocks for dense vectors, ``postings`` for sparse ones, ``selection`` of each
block's top k), ``ann`` (faiss IVF candidates, ``rerank`` by exact cosine, ``recall`` measured on
a sample), ``pair_dots`` (cosines of chosen pairs), ``dask_engine`` (the Dask cluster that runs partitions of users),
``neighbours`` (the answer type) and
``options`` (the SEARCH settings).  Importing this package imports none of them: faiss, numba and
Dask load only with the module that needs them.
"""
