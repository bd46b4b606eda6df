"""DATA_DIR=s3://bucket/prefix: the same tables, the same validation, read with boto3 (moto)."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from recommender.data.loader import DataValidationError, load_tables
from recommender.data.schema import FILES


@pytest.fixture
def bucket(small_dataset: Path):
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="exports")
        for name in FILES.values():
            s3.upload_file(str(small_dataset / name), "exports", f"nightly/2026-11-28/{name}")
        yield s3


def test_tables_load_from_s3_like_from_disk(bucket, small_dataset):
    from_s3 = load_tables("s3://exports/nightly/2026-11-28/")
    from_disk = load_tables(small_dataset)
    for name in FILES:
        assert getattr(from_s3, name).equals(getattr(from_disk, name))
    assert from_s3.dropped == from_disk.dropped


def test_missing_object_names_the_s3_url(bucket):
    bucket.delete_object(Bucket="exports", Key="nightly/2026-11-28/course_tags.csv")
    with pytest.raises(DataValidationError, match=r"^s3://exports/nightly/2026-11-28/course_tags\.csv: file not found$"):
        load_tables("s3://exports/nightly/2026-11-28")


def test_bad_value_names_the_s3_url_column_and_row(bucket):
    bucket.put_object(Bucket="exports", Key="bad/user_interests.csv", Body=b"user_handle,interest_tag,date_followed\nx,java,2017-01-01\n")
    with pytest.raises(DataValidationError, match=r"^s3://exports/bad/user_interests\.csv: column 'user_handle', row 2"):
        load_tables("s3://exports/bad", ("user_interests",))


def test_generator_reads_s3_data_dir(bucket, tmp_path, monkeypatch):
    import json

    import run_generator

    out = tmp_path / "items.jsonl"
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    code = run_generator.main(["--data-dir", "s3://exports/nightly/2026-11-28", "--models", "tfidf_user_interest",
                               "--dry-run", str(out), "--no-progress", "--report", str(tmp_path / "run.json")])
    assert code == 0
    assert len(out.read_text().splitlines()) == 600
    assert json.loads((tmp_path / "run.json").read_text())["rows_read"]["user_interests"] > 0


def test_header_only_object_names_the_s3_url(bucket):
    bucket.put_object(Bucket="exports", Key="empty/user_interests.csv", Body=b"user_handle,interest_tag,date_followed\n")
    with pytest.raises(DataValidationError, match=r"^s3://exports/empty/user_interests\.csv: no data rows$"):
        load_tables("s3://exports/empty", ("user_interests",))


def test_overflowing_handle_in_s3_object_names_url_column_and_editor_line(bucket):
    body = b'user_handle,interest_tag,date_followed\n1,"two\nlines",2017-01-01\n\n1180591620717411303424,java,2017-01-01\n'
    bucket.put_object(Bucket="exports", Key="big/user_interests.csv", Body=body)
    with pytest.raises(DataValidationError) as info:
        load_tables("s3://exports/big", ("user_interests",))
    assert str(info.value) == ("s3://exports/big/user_interests.csv: column 'user_handle', row 5: value '1180591620717411303424' "
                               "is above the largest user handle, 9223372036854775807")
