"""Where the neighbour lists go: versioned runs in DynamoDB (Local or AWS) or, for dry runs, JSON lines.

``items`` (the stored item), ``codec`` (its stored forms, to and from), ``dynamo`` (clients,
tables, read path), ``control`` (the control table's layout), ``lock``, ``writer``, ``runs``
(records and retention), ``publisher`` (the DynamoDB sink that ties them together), ``jsonl``
(the dry-run sink).  Importing this package
imports none of them: the API loads only what it reads with.
"""
