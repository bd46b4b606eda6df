"""Similar-users recommender: batch generator (tables -> models -> top-k -> DynamoDB) and a Flask API.

The sub-packages follow the data flow: ``data`` (load and validate the four tables),
``features`` (sparse user matrices), ``models`` (one module per similarity model),
``topk`` (blocked all-users nearest-neighbour search), ``store`` (DynamoDB / JSON lines),
``pipeline`` (the batch job) and ``api`` (the HTTP service, which never imports TensorFlow).
"""

__version__ = "1.1.0"
