"""The multiprocess directory's size gauges: what every scrape reads, for an alert on its growth."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from ops_observe.metrics.multiprocess import DirectoryCollector


def test_counts_the_value_files_and_their_bytes(tmp_path: Path) -> None:
    (tmp_path / "counter_1.db").write_bytes(b"x" * 100)
    (tmp_path / "gauge_livesum_1.db").write_bytes(b"x" * 28)
    (tmp_path / "live-1").touch()  # a registration, not a value file
    (tmp_path / ".hash_key").write_bytes(b"k" * 32)
    registry = CollectorRegistry()
    registry.register(DirectoryCollector(str(tmp_path), "svc"))

    assert registry.get_sample_value("svc_metrics_multiprocess_files") == 2
    assert registry.get_sample_value("svc_metrics_multiprocess_bytes") == 128

    (tmp_path / "histogram_2.db").write_bytes(b"x" * 72)  # read again at each scrape
    assert registry.get_sample_value("svc_metrics_multiprocess_files") == 3
    assert registry.get_sample_value("svc_metrics_multiprocess_bytes") == 200
    assert b"# TYPE svc_metrics_multiprocess_files gauge" in generate_latest(registry)


def test_an_empty_directory_is_zero(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    registry.register(DirectoryCollector(str(tmp_path / "missing"), "svc"))
    assert registry.get_sample_value("svc_metrics_multiprocess_files") == 0
    assert registry.get_sample_value("svc_metrics_multiprocess_bytes") == 0
