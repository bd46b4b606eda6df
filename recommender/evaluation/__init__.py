"""Offline evaluation of the similarity models (``similar-users-evaluate``, ``make evaluate``).

Modules, in data-flow order:

``split``      per-user temporal hold-out of course views or interest tags (and a validation
               split of the training part)
``baselines``  random and most-active users as neighbours, in the models' ``Neighbours`` shape
``recommend``  items scored by the similarity-weighted training items of a user's neighbours
``metrics``    recall / NDCG / hit-rate@k, coverage, level accuracy, planted-truth precision,
               Jaccard agreement
``runner``     fits every model on every split and collects all figures
``tuning``     small grids of each model's documented choices on the validation split
``report``     JSON, markdown tables and PNG bar charts
``cli``        the command line (``__main__``)
"""
