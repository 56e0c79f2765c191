"""Samples to the Prometheus text format, through a registry made for each scrape (the
readings are gathered before, asynchronously; prometheus_client's collectors are
synchronous)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from drift_backend.metrics.families import Family, Sample


class SampleCollector(Collector):
    """Gauges of the given samples, one family each, in the order they first appear."""

    def __init__(self, samples: Sequence[Sample]) -> None:
        self.samples = samples

    def collect(self) -> Iterator[Metric]:
        grouped: dict[Family, GaugeMetricFamily] = {}
        for sample in self.samples:
            family = grouped.get(sample.family)
            if family is None:
                family = grouped[sample.family] = GaugeMetricFamily(
                    sample.family.name, sample.family.help, labels=list(sample.family.labels)
                )
            family.add_metric(list(sample.labels), sample.value)
        yield from grouped.values()


def render(samples: Sequence[Sample], process: Iterable[CollectorRegistry]) -> bytes:
    """The scrape's samples, then each of the process's own registries (HTTP, process)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SampleCollector(samples))
    return b"".join([generate_latest(registry), *(generate_latest(r) for r in process)])
