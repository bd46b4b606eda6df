"""Command-line entry points, one per job (``pyproject.toml`` ``[project.scripts]``).

``similar-users-generate`` (also ``run_generator.py``), ``similar-users-serve`` (also
``run_server.py``), ``similar-users-evaluate``, ``similar-users-ab-report``.  The tooling beside them
(``similar-users-datagen``, ``similar-users-ab-demo``) is in ``recommender_tools``; the benchmarks (``benchmarks/``) are not packaged.
"""
