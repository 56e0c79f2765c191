"""Chart data for the dashboard: per-feature check results and the aggregations over them."""
