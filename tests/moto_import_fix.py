"""moto 5.2.5's ImportTable with a real JSON parser: its own cannot read escaped quotes.

moto reads each import line with ``py_partiql_parser.JsonParser``, a tokenizer that ends a string
at any quote character (``"``, ``'``, ``’``), escaped or not, so a string attribute holding JSON
(our packed ``reasons``: ``{"k":"tag",...}``) or an apostrophe breaks the item and the import
FAILS.  DynamoDB's ImportTable reads standard JSON.  This replaces only that parsing step (one
``json.loads`` per line, as the format is specified), keeping moto's table creation, counting and
error reporting; everything else of moto is untouched.  ``python -m tests.moto_import_fix -p PORT``
runs ``moto_server`` with the fix.
"""

from __future__ import annotations

import json
import sys

from moto.core.utils import gzip_decompress
from moto.dynamodb.models.table_import import TableImport


def _process_s3_files(self, s3_backend, bucket) -> None:  # moto's method, but for the parser
    from moto.dynamodb.models import dynamodb_backends

    dynamo = dynamodb_backends[self.account_id][self.region_name]
    self.table = dynamo.create_table(
        name=self.table_name, billing_mode=self.billing_mode, throughput=self.throughput, schema=self.key_schema,
        global_indexes=self.global_indexes, indexes=None, attr=self.attrs, sse_specification=None, streams=None,
        tags=[], deletion_protection_enabled=False, warm_throughput=None,
    )
    keys, _, _, _ = s3_backend.list_objects(bucket, prefix=self.s3_source.get("S3KeyPrefix"), delimiter=None,
                                            marker=None, max_keys=None)
    for key in keys:
        content = gzip_decompress(key.value) if self.compression_type == "GZIP" else key.value
        for line in content.decode("utf-8").splitlines():
            if not line.strip():
                continue
            try:
                self.processed_count += 1
                self.processed_bytes += len(line)
                self.table.put_item(item_attrs=json.loads(line)["Item"])
                self.imported_count += 1
            except Exception as e:  # noqa: BLE001 - as moto: an item that fails counts as an error
                self.failure_message = str(e)
                self.error_count += 1
    self.status = "COMPLETED" if self.error_count == 0 else "FAILED"


def patch() -> None:
    TableImport._process_s3_files = _process_s3_files


if __name__ == "__main__":
    patch()
    from moto.server import main

    sys.exit(main(sys.argv[1:]))
