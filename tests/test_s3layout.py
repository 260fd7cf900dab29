"""flowwatch.s3layout: AWS's S3 key layout for flow logs and Athena partition projection over it."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from flowwatch.s3layout import S3Layout, to_utc

ACCT, REGION, BUCKET = "123456789012", "us-east-1", "flowwatch-logs"
T = datetime(2026, 11, 27, 5, 7, 31, tzinfo=UTC)
FL = "fl-0123456789abcdef0"
TOKEN = "a1b2c3d4"


def layout(**kw: object) -> S3Layout:
    return S3Layout(bucket=BUCKET, account=ACCT, region=REGION, **kw)  # type: ignore[arg-type]


# The four combinations of HiveCompatiblePartitions x PerHourPartition, as documented in
# "Publish flow logs to Amazon S3" -> "Flow log files".
CASES = [
    (
        dict(),
        "AWSLogs/123456789012/vpcflowlogs/us-east-1/",
        "2026/11/27",
    ),
    (
        dict(per_hour=True),
        "AWSLogs/123456789012/vpcflowlogs/us-east-1/",
        "2026/11/27/05",
    ),
    (
        dict(hive=True),
        "AWSLogs/aws-account-id=123456789012/aws-service=vpcflowlogs/aws-region=us-east-1/",
        "year=2026/month=11/day=27",
    ),
    (
        dict(hive=True, per_hour=True),
        "AWSLogs/aws-account-id=123456789012/aws-service=vpcflowlogs/aws-region=us-east-1/",
        "year=2026/month=11/day=27/hour=05",
    ),
]
IDS = ["plain", "per-hour", "hive", "hive-per-hour"]


@pytest.mark.parametrize(("options", "base", "dt"), CASES, ids=IDS)
def test_keys_and_partitions_for_the_four_layouts(options: dict[str, bool], base: str, dt: str) -> None:
    lay = layout(**options)
    assert lay.base_prefix() == base
    assert lay.dt_value(T) == dt
    assert lay.partition_prefix(T) == f"{base}{dt}/"
    name = "123456789012_vpcflowlogs_us-east-1_fl-0123456789abcdef0_20261127T0505Z_a1b2c3d4.log.gz"
    assert lay.object_key(T, FL, TOKEN) == f"{base}{dt}/{name}"
    assert lay.table_location() == "s3://flowwatch-logs/AWSLogs/"   # the level above the accounts
    assert lay.dt_from_key(lay.object_key(T, FL, TOKEN)) == dt
    assert lay.dt_from_key(f"s3://{BUCKET}/{lay.object_key(T, FL, TOKEN)}") == dt


@pytest.mark.parametrize(("options", "base", "dt"), CASES, ids=IDS)
def test_prefix_and_parquet(options: dict[str, bool], base: str, dt: str) -> None:
    lay = layout(prefix="team/flow", file_format="parquet", **options)
    assert lay.prefix == "team/flow/"
    assert lay.base_prefix() == f"team/flow/{base}"
    key = lay.object_key(T, FL, TOKEN)
    assert key == f"team/flow/{base}{dt}/{ACCT}_vpcflowlogs_{REGION}_{FL}_20261127T0505Z_{TOKEN}.log.parquet"
    assert lay.dt_from_key(key) == dt


def test_file_name_uses_the_five_minute_window_like_the_aws_example() -> None:
    # AWS's example: 123456789012_vpcflowlogs_us-east-1_fl-1234abcd_20180620T1620Z_fe123456.log.gz
    # holds the records that end between 16:20:00 and 16:24:59.
    lay = layout()
    for minute, second in ((20, 0), (22, 13), (24, 59)):
        t = datetime(2018, 6, 20, 16, minute, second, tzinfo=UTC)
        assert lay.file_name(t, "fl-1234abcd", "fe123456") == (
            "123456789012_vpcflowlogs_us-east-1_fl-1234abcd_20180620T1620Z_fe123456.log.gz"
        )
    assert S3Layout.window_start(datetime(2018, 6, 20, 16, 25)) == datetime(2018, 6, 20, 16, 25, tzinfo=UTC)


def test_times_are_utc_naive_means_utc() -> None:
    lay = layout(per_hour=True)
    naive = datetime(2026, 11, 27, 5, 7, 31)
    assert lay.dt_value(naive) == "2026/11/27/05"
    # 01:30 at UTC+02:00 is still the previous day in UTC.
    plus_two = datetime(2026, 11, 28, 1, 30, tzinfo=timezone(timedelta(hours=2)))
    assert lay.dt_value(plus_two) == "2026/11/27/23"
    assert to_utc(plus_two).tzinfo is UTC
    assert lay.object_key(plus_two, FL, TOKEN).endswith("_20261127T2330Z_a1b2c3d4.log.gz")


@pytest.mark.parametrize(
    "key",
    [
        "AWSLogs/999999999999/vpcflowlogs/us-east-1/2026/11/27/x.log.gz",  # other account
        "AWSLogs/123456789012/vpcflowlogs/eu-west-1/2026/11/27/x.log.gz",  # other region
        "AWSLogs/123456789012/vpcflowlogs/us-east-1/2026/13/27/x.log.gz",  # month 13
        "AWSLogs/123456789012/vpcflowlogs/us-east-1/2026/11/x.log.gz",  # no day
        "AWSLogs/123456789012/vpcflowlogs/us-east-1/",
        "s3://another-bucket/AWSLogs/123456789012/vpcflowlogs/us-east-1/2026/11/27/x.log.gz",
    ],
)
def test_dt_from_key_rejects_foreign_keys(key: str) -> None:
    assert layout().dt_from_key(key) is None


def test_dt_from_key_needs_the_hour_when_per_hour() -> None:
    assert layout(per_hour=True).dt_from_key("AWSLogs/123456789012/vpcflowlogs/us-east-1/2026/11/27/x.log.gz") is None
    assert layout(per_hour=True).dt_from_key("AWSLogs/123456789012/vpcflowlogs/us-east-1/2026/11/27/24/x") is None


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (dict(prefix="AWSLogs/"), "AWSLogs"),
        (dict(prefix="x/AWSLogs"), "AWSLogs"),
        (dict(file_format="json"), "file_format"),
    ],
)
def test_invalid_layouts(kw: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        layout(**kw)


def test_invalid_names() -> None:
    with pytest.raises(ValueError, match="bucket"):
        S3Layout(bucket="", account=ACCT, region=REGION)
    with pytest.raises(ValueError, match="flow log id"):
        layout().object_key(T, "fl_1", TOKEN)
    with pytest.raises(ValueError, match="token"):
        layout().object_key(T, FL, "a/b")


def test_prefix_normalisation() -> None:
    assert layout(prefix="").prefix == ""
    assert layout(prefix="/logs/").prefix == "logs/"
    assert layout(prefix="logs") == layout(prefix="logs/")


# --- Athena partition projection -------------------------------------------------------------


def java_format(pattern: str, t: datetime) -> str:
    """Render the subset of java.time.format.DateTimeFormatter used for projection formats."""
    out, i = [], 0
    letters = {"yyyy": "%Y", "MM": "%m", "dd": "%d", "HH": "%H"}
    while i < len(pattern):
        if pattern[i] == "'":
            end = pattern.index("'", i + 1)
            out.append(pattern[i + 1:end])
            i = end + 1
            continue
        for token, directive in letters.items():
            if pattern.startswith(token, i):
                out.append(t.strftime(directive))
                i += len(token)
                break
        else:
            assert not pattern[i].isalpha(), f"unexpected pattern letter {pattern[i]!r}"
            out.append(pattern[i])
            i += 1
    return "".join(out)


@pytest.mark.parametrize(("options", "base", "dt"), CASES, ids=IDS)
def test_projection_format_renders_the_dt_values(options: dict[str, bool], base: str, dt: str) -> None:
    lay = layout(**options)
    assert java_format(lay.projection_format(), T) == dt


def test_projection_parameters_plain_text_daily() -> None:
    assert layout().projection_parameters() == {
        "projection.enabled": "true",
        "projection.aws_account_id.type": "enum",
        "projection.aws_account_id.values": ACCT,
        "projection.aws_region.type": "enum",
        "projection.aws_region.values": REGION,
        "projection.dt.type": "date",
        "projection.dt.format": "yyyy/MM/dd",
        "projection.dt.range": "2020/01/01,NOW",
        "projection.dt.interval": "1",
        "projection.dt.interval.unit": "DAYS",
        "storage.location.template": "s3://flowwatch-logs/AWSLogs/${aws_account_id}/vpcflowlogs/${aws_region}/${dt}",
        "skip.header.line.count": "1",
    }


def test_projection_parameters_hive_hourly_parquet() -> None:
    lay = layout(hive=True, per_hour=True, file_format="parquet", prefix="p")
    params = lay.projection_parameters(start="2025-03-01")
    assert params["projection.dt.format"] == "'year='yyyy'/month='MM'/day='dd'/hour='HH"
    assert params["projection.dt.range"] == "year=2025/month=03/day=01/hour=00,NOW"
    assert params["projection.dt.interval.unit"] == "HOURS"
    assert params["storage.location.template"] == (
        "s3://flowwatch-logs/p/AWSLogs/aws-account-id=${aws_account_id}/aws-service=vpcflowlogs/"
        "aws-region=${aws_region}/${dt}"
    )
    assert "skip.header.line.count" not in params, "Parquet files have no header line"
    # The template with the values substituted is exactly the folder AWS writes to.
    folder = (params["storage.location.template"].replace("${dt}", lay.dt_value(T))
              .replace("${aws_account_id}", ACCT).replace("${aws_region}", REGION))
    assert f"{folder}/" == f"s3://{BUCKET}/{lay.partition_prefix(T)}"


def test_projection_start_forms() -> None:
    lay = layout(hive=True)
    assert lay.projection_parameters(start=date(2024, 2, 29))["projection.dt.range"] == "year=2024/month=02/day=29,NOW"
    assert lay.projection_parameters(start="2024/02/29")["projection.dt.range"] == "year=2024/month=02/day=29,NOW"
    with pytest.raises(ValueError, match="YYYY/MM/DD"):
        lay.projection_parameters(start="yesterday")
    with pytest.raises(ValueError, match="not a valid date"):
        lay.projection_parameters(start="2023/02/29")


# --- time windows ------------------------------------------------------------------------------


def test_dt_range_daily_and_hourly() -> None:
    start = datetime(2026, 11, 27, 23, 10, tzinfo=UTC)
    end = datetime(2026, 11, 28, 0, 20, tzinfo=UTC)
    assert layout().dt_range(start, end) == ("2026/11/27", "2026/11/28")
    assert layout(per_hour=True).dt_range(start, end) == ("2026/11/27/23", "2026/11/28/00")
    assert layout(hive=True).dt_range(start, end) == ("year=2026/month=11/day=27", "year=2026/month=11/day=28")
    assert layout(hive=True, per_hour=True).dt_range(start, start) == (
        "year=2026/month=11/day=27/hour=23", "year=2026/month=11/day=27/hour=23",
    )
    assert layout().dt_predicate(start, end) == "dt BETWEEN '2026/11/27' AND '2026/11/28'"
    with pytest.raises(ValueError, match="before it starts"):
        layout().dt_range(end, start)


@pytest.mark.parametrize(("options", "base", "dt"), CASES, ids=IDS)
def test_dt_values_sort_like_time(options: dict[str, bool], base: str, dt: str) -> None:
    lay = layout(**options)
    times = [datetime(2025, 12, 31, 22) + timedelta(hours=7 * i) for i in range(60)]
    values = [lay.dt_value(t) for t in times]
    assert values == sorted(values)
    lo, hi = lay.dt_range(times[10], times[20])
    inside = [v for v in values if lo <= v <= hi]
    assert values[10] in inside and values[20] in inside
    assert all(lo <= lay.dt_value(t) <= hi for t in times[10:21])
    for t in times[:10] + times[21:]:  # outside the window: outside the bounds, or in an end partition
        v = lay.dt_value(t)
        assert v in (lo, hi) or not lo <= v <= hi


def test_partition_prefixes_cover_the_window() -> None:
    start = datetime(2026, 11, 27, 22, 50, tzinfo=UTC)
    end = datetime(2026, 11, 28, 1, 5, tzinfo=UTC)
    base = "AWSLogs/123456789012/vpcflowlogs/us-east-1/"
    assert layout().partition_prefixes(start, end) == [f"{base}2026/11/27/", f"{base}2026/11/28/"]
    assert layout(per_hour=True).partition_prefixes(start, end) == [
        f"{base}2026/11/27/22/", f"{base}2026/11/27/23/", f"{base}2026/11/28/00/", f"{base}2026/11/28/01/",
    ]


# --- CreateFlowLogs and the bucket policy --------------------------------------------------------


def test_create_flow_logs_arguments() -> None:
    assert layout().log_destination() == "arn:aws:s3:::flowwatch-logs"
    assert layout(prefix="team").log_destination() == "arn:aws:s3:::flowwatch-logs/team/"
    assert layout(hive=True, per_hour=True, file_format="parquet").destination_options() == {
        "FileFormat": "parquet", "HiveCompatiblePartitions": True, "PerHourPartition": True,
    }
    assert layout().delivery_resource_arn() == "arn:aws:s3:::flowwatch-logs/AWSLogs/123456789012/*"
    assert layout(hive=True, prefix="x").delivery_resource_arn() == (
        "arn:aws:s3:::flowwatch-logs/x/AWSLogs/aws-account-id=123456789012/*"
    )
    assert re.fullmatch(r"arn:aws:s3:::[a-z0-9.-]+(/.*)?", layout(prefix="a/b").log_destination())


# ---- a record's file: the 5-minute window of its END time -----------------------------------

@pytest.mark.parametrize(("end", "stamp", "folder"), [
    (datetime(2018, 6, 20, 16, 20, 0, tzinfo=UTC), "20180620T1620Z", "2018/06/20/16"),    # AWS's example:
    (datetime(2018, 6, 20, 16, 24, 59, tzinfo=UTC), "20180620T1620Z", "2018/06/20/16"),   # 16:20:00-16:24:59
    (datetime(2018, 6, 20, 16, 25, 0, tzinfo=UTC), "20180620T1625Z", "2018/06/20/16"),
    (datetime(2026, 11, 27, 23, 59, 59, tzinfo=UTC), "20261127T2355Z", "2026/11/27/23"),  # last window of a day
    (datetime(2026, 11, 28, 0, 0, 0, tzinfo=UTC), "20261128T0000Z", "2026/11/28/00"),     # first of the next
    (datetime(2026, 11, 27, 5, 59, 59, tzinfo=UTC), "20261127T0555Z", "2026/11/27/05"),   # an hour's last
])
def test_a_records_end_time_names_its_file_and_folder(end: datetime, stamp: str, folder: str) -> None:
    key = layout(per_hour=True).object_key(end, "fl-1234abcd", "fe123456")
    assert key == (f"AWSLogs/{ACCT}/vpcflowlogs/{REGION}/{folder}/"
                   f"{ACCT}_vpcflowlogs_{REGION}_fl-1234abcd_{stamp}_fe123456.log.gz")
    hive = layout(hive=True, per_hour=True).object_key(end, "fl-1234abcd", "fe123456")
    y, m, d, h = folder.split("/")
    assert hive.startswith(f"AWSLogs/aws-account-id={ACCT}/aws-service=vpcflowlogs/aws-region={REGION}/"
                           f"year={y}/month={m}/day={d}/hour={h}/")
    assert hive.endswith(f"_{stamp}_fe123456.log.gz")


def test_a_window_never_straddles_an_hour() -> None:
    lay = layout(per_hour=True)
    t = datetime(2026, 11, 27, tzinfo=UTC)
    while t < datetime(2026, 11, 29, tzinfo=UTC):
        assert lay.dt_value(S3Layout.window_start(t)) == lay.dt_value(t)
        t += timedelta(seconds=59)


# ---- query windows -> the folders that hold their records ------------------------------------
# A query window [from, to) selects records by START; a record's file is the window of its END,
# at most one aggregation interval (10 minutes) later. So a window must list the folders from
# `from`'s to (to + 10 min)'s: timewindow.PARTITION_SLACK (15 min) covers that with one window spare.

@pytest.mark.parametrize("options", [dict(), dict(per_hour=True), dict(hive=True), dict(hive=True, per_hour=True)])
@pytest.mark.parametrize(("start", "duration"), [
    (datetime(2026, 11, 27, 23, 59, 59, tzinfo=UTC), 600),   # starts before midnight, ends after it
    (datetime(2026, 11, 27, 5, 55, 0, tzinfo=UTC), 599),     # crosses an hour
    (datetime(2026, 11, 27, 23, 50, 0, tzinfo=UTC), 60),
    (datetime(2026, 11, 27, 0, 0, 0, tzinfo=UTC), 0),
])
def test_every_record_started_in_a_query_window_is_in_its_listed_folders(options: dict[str, bool], start: datetime,
                                                                       duration: int) -> None:
    from flowwatch.timewindow import TimeWindow

    lay = layout(**options)
    end = start + timedelta(seconds=duration)
    key = lay.object_key(end, FL, TOKEN)
    # the tightest window holding the record's start, and a window ending right after it
    for window in (TimeWindow(start, start + timedelta(seconds=1)),
                   TimeWindow(start - timedelta(hours=3), start + timedelta(seconds=1))):
        assert any(key.startswith(p) for p in window.partition_prefixes(lay)), (window, key)
        lo, hi = window.partition_range(lay)
        assert lo <= lay.dt_from_key(key) <= hi  # type: ignore[operator]
