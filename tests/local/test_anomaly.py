"""Anomaly detection and metric-math alarms (flowwatch.local.anomaly), pure: no server, no clock.

Expected bands are computed here from the model's definition (median, 1.4826 * MAD, floors),
with the statistics module, not with the module's helpers.
"""

from __future__ import annotations

import random
import statistics

import pytest

from flowwatch.local.alarms import ALARM, INSUFFICIENT, OK
from flowwatch.local.anomaly import (MIN_TRAINING, AnomalyAlarmSpec, DetectorError, DetectorStore, InsightAlarmSpec,
                                     TrainingConfig, anomaly_reason_data, band, evaluate_anomaly, evaluate_insight,
                                     insight_reason_data)

P = 300
T0 = 1_700_000_100 // P * P


def alarm(comparison="LessThanLowerOrGreaterThanUpperThreshold", n=1, m=None, treat="missing",
          expression="ANOMALY_DETECTION_BAND(m1, 2)", stat="Sum"):
    a = {"AlarmName": "rejected-spike", "EvaluationPeriods": n, "ComparisonOperator": comparison,
         "TreatMissingData": treat, "ThresholdMetricId": "ad1",
         "Metrics": [{"Id": "m1", "ReturnData": True,
                      "MetricStat": {"Metric": {"Namespace": "flowwatch/lab", "MetricName": "rejected-spike",
                                                "Dimensions": []}, "Period": P, "Stat": stat}},
                     {"Id": "ad1", "Expression": expression, "Label": "rejected-spike (expected)", "ReturnData": True}]}
    if m:
        a["DatapointsToAlarm"] = m
    return a


def noisy_history(n=200, seed=1, level=20.0, noise=3.0):
    rng = random.Random(seed)
    return [(T0 + i * P, max(0.0, round(rng.gauss(level, noise)))) for i in range(n)]


def run_alarm(spec, history, new_values, current=OK):
    """Append new_values after history, evaluate the alarm at the last one."""
    hist = list(history)
    t = hist[-1][0] + P if hist else T0
    for v in new_values:
        hist.append((t, v))
        t += P
    starts = spec.period_starts(t - P)
    values_at = dict(hist)
    values = [values_at.get(s) for s in starts]
    bands = [band(hist, s, P, spec.width) for s in starts]
    return evaluate_anomaly(spec, values, bands, current, starts), bands, starts


# ---- the model ------------------------------------------------------------------------------

def test_band_is_median_plus_minus_width_times_scaled_mad():
    hist = noisy_history(100)
    start = hist[-1][0] + P
    values = [v for _, v in hist]
    med = statistics.median(values)
    mad = statistics.median([abs(v - med) for v in values])
    b = band(hist, start, P, 3.0)
    assert b is not None and b.center == med
    assert b.upper == pytest.approx(med + 3 * 1.4826 * mad)
    assert b.lower == pytest.approx(max(0.0, med - 3 * 1.4826 * mad))
    assert b.training == 100 and not b.seasonal


def test_flat_baseline_still_has_a_band():
    zeros = [(T0 + i * P, 0.0) for i in range(30)]
    b = band(zeros, T0 + 30 * P, P, 2.0)
    assert b is not None and b.lower == 0.0 and b.upper > 0
    flat = [(T0 + i * P, 1000.0) for i in range(30)]
    b = band(flat, T0 + 30 * P, P, 2.0)
    assert b is not None and b.lower < 1000 < b.upper and b.upper - b.lower == pytest.approx(4 * 50.0)


def test_no_band_before_the_minimum_training_window():
    hist = noisy_history(MIN_TRAINING - 1)
    assert band(hist, hist[-1][0] + P, P) is None
    hist = noisy_history(MIN_TRAINING)
    assert band(hist, hist[-1][0] + P, P) is not None


def test_training_is_bounded_to_two_weeks_and_excludes_ranges_and_the_future():
    old = [(T0 + i * P, 1000.0) for i in range(50)]                   # more than 14 days before
    start = T0 + 15 * 86400
    recent = [(start - (i + 1) * P, 10.0) for i in range(20)]
    later = [(start + i * P, 5000.0) for i in range(20)]               # after the evaluated period
    b = band(old + recent + later, start, P)
    assert b is not None and b.center == 10.0 and b.training == 20
    excluded = TrainingConfig(excluded=((start - 10 * P, start),))
    assert band(old + recent, start, P, config=excluded) is None        # only 10 periods left
    assert band(recent + [(start - 3 * P, None)], start, P).training == 20  # type: ignore[union-attr]


def test_daily_seasonality_uses_the_same_hour():
    # busy (100) from 12:00 to 13:00 UTC every day, quiet (5) otherwise, for 5 days
    day0 = T0 // 86400 * 86400
    hist = [(t, 100.0 if 12 <= (t % 86400) // 3600 < 13 else 5.0) for t in range(day0, day0 + 5 * 86400, P)]
    noon = day0 + 5 * 86400 + 12 * 3600
    b = band(hist, noon, P)
    assert b is not None and b.seasonal and b.center == 100.0
    night = day0 + 5 * 86400 + 2 * 3600
    assert band(hist, night, P).center == 5.0                          # type: ignore[union-attr]


def test_deterministic():
    hist = noisy_history(300, seed=4)
    assert band(hist, hist[-1][0] + P, P) == band(list(reversed(hist)), hist[-1][0] + P, P)


# ---- alarms ---------------------------------------------------------------------------------

def test_spike_alarms_and_normal_value_does_not():
    spec = AnomalyAlarmSpec.from_describe(alarm())
    result, bands, _ = run_alarm(spec, noisy_history(), [200.0])
    assert result.state == ALARM
    assert result.reason.startswith("Thresholds Crossed: 1 out of the last 1 datapoints [200.0 (")
    assert f"was less than the lower thresholds [{bands[-1].lower!r}] or greater than the upper thresholds " \
           f"[{bands[-1].upper!r}] (minimum 1 datapoint for OK -> ALARM transition)." in result.reason
    result, _, _ = run_alarm(spec, noisy_history(), [20.0], current=ALARM)
    assert result.state == OK
    assert "was not less than the lower thresholds" in result.reason
    assert "or not greater than the upper thresholds" in result.reason
    assert result.reason.endswith("(minimum 1 datapoint for ALARM -> OK transition).")


def test_one_sided_comparisons():
    low = AnomalyAlarmSpec.from_describe(alarm("LessThanLowerThreshold"))
    high = AnomalyAlarmSpec.from_describe(alarm("GreaterThanUpperThreshold"))
    assert run_alarm(low, noisy_history(), [200.0])[0].state == OK
    assert run_alarm(high, noisy_history(), [200.0])[0].state == ALARM
    assert run_alarm(low, noisy_history(), [0.0])[0].state == ALARM
    result, bands, starts = run_alarm(high, noisy_history(), [200.0])
    assert "upper thresholds" in result.reason and "lower" not in result.reason
    data = anomaly_reason_data(high, result, bands, starts, starts[-1] + 10)
    assert data["recentDatapoints"] == [200.0] and data["recentUpperThresholds"] == [bands[-1].upper]
    assert "recentLowerThresholds" not in data and "statistic" not in data
    assert data["evaluatedDatapoints"][0]["threshold"] == bands[-1].upper and data["period"] == P


def test_missing_training_is_insufficient_data_whatever_the_treatment():
    for treat in ("missing", "notBreaching", "breaching", "ignore"):
        spec = AnomalyAlarmSpec.from_describe(alarm(treat=treat))
        result, _, _ = run_alarm(spec, noisy_history(5), [500.0], current=OK)
        assert result.state == INSUFFICIENT, treat


def test_m_of_n_over_the_band():
    spec = AnomalyAlarmSpec.from_describe(alarm(n=3, m=2))
    assert run_alarm(spec, noisy_history(), [20.0, 20.0, 200.0])[0].state == OK
    result = run_alarm(spec, noisy_history(), [200.0, 20.0, 200.0])[0]
    assert result.state == ALARM and "2 out of the last 3 datapoints" in result.reason
    assert "were less than the lower thresholds" in result.reason


def test_missing_datapoints_follow_treat_missing_data():
    hist = noisy_history()
    spec = AnomalyAlarmSpec.from_describe(alarm(treat="breaching"))
    starts = spec.period_starts(hist[-1][0] + P)
    bands = [band(hist, s, P) for s in starts]
    assert evaluate_anomaly(spec, [None] * len(starts), bands, OK, starts).state == ALARM
    spec = AnomalyAlarmSpec.from_describe(alarm(treat="notBreaching"))
    assert evaluate_anomaly(spec, [None] * len(starts), bands, ALARM, starts).state == OK


@pytest.mark.parametrize(("expression", "width"), [("ANOMALY_DETECTION_BAND(m1)", 2.0),
                                                   ("ANOMALY_DETECTION_BAND(m1, 0.5)", 0.5),
                                                   (" ANOMALY_DETECTION_BAND( m1 ,3 ) ", 3.0)])
def test_band_expression_width(expression, width):
    assert AnomalyAlarmSpec.from_describe(alarm(expression=expression)).width == width


@pytest.mark.parametrize("bad", [
    alarm(expression="ANOMALY_DETECTION_BAND(m2, 2)"), alarm(expression="m1 * 2"),
    alarm(comparison="GreaterThanThreshold"), alarm(stat="p99"), {**alarm(), "ThresholdMetricId": None},
    {"AlarmName": "x", "MetricName": "M"},
])
def test_unsupported_band_alarms_are_refused(bad):
    with pytest.raises(ValueError):
        AnomalyAlarmSpec.from_describe(bad)


def insight_alarm(expression="INSIGHT_RULE_METRIC('top-rejected-sources', 'MaxContributorValue')", threshold=25.0):
    return {"AlarmName": "top", "EvaluationPeriods": 1, "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "Threshold": threshold, "TreatMissingData": "notBreaching",
            "Metrics": [{"Id": "e1", "Expression": expression, "Period": P, "ReturnData": True}]}


def test_insight_rule_metric_alarm():
    spec = InsightAlarmSpec.from_describe(insight_alarm())
    assert (spec.rule, spec.metric, spec.period) == ("top-rejected-sources", "MaxContributorValue", P)
    starts = spec.period_starts(T0 + 10 * P)
    result = evaluate_insight(spec, [None, None, 30.0], OK, starts)
    assert result.state == ALARM
    assert result.reason.startswith("Threshold Crossed: 1 out of the last 1 datapoints [30.0 (")
    assert "was greater than or equal to the threshold (25.0)" in result.reason
    assert evaluate_insight(spec, [None, None, 3.0], ALARM, starts).state == OK
    assert evaluate_insight(spec, [None, None, None], ALARM, starts).state == OK      # notBreaching
    data = insight_reason_data(spec, result, T0 + 10 * P)
    assert "statistic" not in data and data["threshold"] == 25.0 and data["recentDatapoints"] == [30.0]


@pytest.mark.parametrize("expression", ['INSIGHT_RULE_METRIC("r", "UniqueContributors")',
                                        'INSIGHT_RULE_METRIC("r", UniqueContributors)'])
def test_insight_expression_quoting(expression):
    assert InsightAlarmSpec.from_describe(insight_alarm(expression)).metric == "UniqueContributors"


@pytest.mark.parametrize("expression", ["INSIGHT_RULE_METRIC('r', 'p99')", "INSIGHT_RULE_METRIC(r, Sum)",
                                        "SUM(METRICS())"])
def test_insight_expression_refused(expression):
    with pytest.raises(ValueError):
        InsightAlarmSpec.from_describe(insight_alarm(expression))


# ---- the detector APIs ----------------------------------------------------------------------

SINGLE = {"SingleMetricAnomalyDetector": {"Namespace": "flowwatch/lab", "MetricName": "rejected-spike",
                                          "Stat": "Sum", "Dimensions": [{"Name": "Stack", "Value": "lab"}]}}


def test_put_describe_delete_round_trip_and_legacy_form():
    store = DetectorStore()
    first = store.put(SINGLE)["AnomalyDetectorId"]
    legacy = {"Namespace": "flowwatch/lab", "MetricName": "rejected-spike", "Stat": "Sum",
              "Dimensions": [{"Name": "Stack", "Value": "lab"}], "Configuration": {"MetricTimezone": "Europe/Paris"}}
    assert store.put(legacy)["AnomalyDetectorId"] == first              # the same metric: updated, not added
    [item] = store.describe()["AnomalyDetectors"]
    assert item["StateValue"] == "PENDING_TRAINING" and item["Configuration"] == {"MetricTimezone": "Europe/Paris"}
    assert item["SingleMetricAnomalyDetector"]["MetricName"] == item["MetricName"] == "rejected-spike"
    assert store.describe({"Namespace": "other"})["AnomalyDetectors"] == []
    assert store.delete({"AnomalyDetectorId": first}) == {}
    with pytest.raises(DetectorError) as err:
        store.delete(SINGLE)
    assert (err.value.code, err.value.status) == ("ResourceNotFoundException", 404)


def test_state_follows_training():
    store = DetectorStore()
    store.put(SINGLE)
    d = store.find("flowwatch/lab", "rejected-spike", [("Stack", "lab")], "Sum")
    assert d is not None
    assert store.update_state(d, MIN_TRAINING - 1) == "PENDING_TRAINING"
    assert store.update_state(d, MIN_TRAINING) == "TRAINED"
    assert store.update_state(d, 3) == "TRAINED_INSUFFICIENT_DATA"


@pytest.mark.parametrize(("request_", "code"), [
    ({**SINGLE, "MetricName": "x"}, "InvalidParameterCombination"),
    ({}, "MissingParameter"),
    ({"SingleMetricAnomalyDetector": {"Namespace": "n", "MetricName": "m"}}, "MissingParameter"),
    ({"SingleMetricAnomalyDetector": {"Namespace": "n", "MetricName": "m", "Stat": "p99.9"}}, "InvalidParameterValue"),
    ({**SINGLE, "Configuration": {"ExcludedTimeRanges": [{"StartTime": 0, "EndTime": 1}] * 11}},
     "InvalidParameterValue"),
    ({**SINGLE, "Configuration": {"ExcludedTimeRanges": [{"StartTime": 5, "EndTime": 1}]}}, "InvalidParameterValue"),
    ({**SINGLE, "Configuration": {"MetricTimezone": "Mars/Olympus"}}, "InvalidParameterValue"),
    ({"MetricMathAnomalyDetector": {"MetricDataQueries": []}}, "InvalidParameterValue"),
])
def test_put_validation(request_, code):
    with pytest.raises(DetectorError) as err:
        DetectorStore().put(request_)
    assert err.value.code == code


def test_describe_pagination_and_combinations():
    store = DetectorStore()
    for i in range(5):
        store.put({"SingleMetricAnomalyDetector": {"Namespace": "n", "MetricName": f"m{i}", "Stat": "Sum"}})
    page = store.describe({"MaxResults": 2})
    seen = [d["MetricName"] for d in page["AnomalyDetectors"]]
    while "NextToken" in page:
        page = store.describe({"MaxResults": 2, "NextToken": page["NextToken"]})
        seen += [d["MetricName"] for d in page["AnomalyDetectors"]]
    assert sorted(seen) == [f"m{i}" for i in range(5)] and len(seen) == 5
    with pytest.raises(DetectorError, match="cannot be used together"):
        store.describe({"AnomalyDetectorIds": ["x"], "Namespace": "n"})
    with pytest.raises(DetectorError) as err:
        store.describe({"NextToken": "garbage"})
    assert err.value.code == "InvalidNextToken"
