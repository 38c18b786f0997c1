"""Prometheus metrics of the platform, served at /metrics by the web tier.

An app of its own because it reads both operations (runs, nodes, alerts) and scheduling
(fire times), which may not import each other; nothing imports it but the URLconf.

Every web process must answer the same, so nothing is counted in a process: gauges are
read from PostgreSQL and the broker at scrape time (`readings`), and counters and
histograms are running totals kept in the database and brought up to date by each scrape
(`totals`). `collector` turns both into metric families for prometheus-client; `views`
guards the endpoint (loopback clients, or the bearer token in METRICS_TOKEN).
"""
