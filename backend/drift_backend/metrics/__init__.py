"""Prometheus ``/metrics``: HTTP request metrics of this process (``http.py``) and drift,
run and queue gauges read from MongoDB at scrape time (``sources.py``), so every replica
answers the same without multiprocess mode. See docs/metrics.md."""
