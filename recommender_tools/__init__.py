"""Tooling beside the product: the synthetic-data generator and the simulated A/B experiment.

Neither the service nor the batch generator imports this package; it needs the generator's
dependencies (``pip install .[generator]``).  Entry points: ``similar-users-datagen``
(:mod:`recommender_tools.datagen`) and ``similar-users-ab-demo`` (:mod:`recommender_tools.ab_demo`).
"""
