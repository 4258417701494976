# Grafana with the Prometheus datasource and the kernel-styles dashboard provisioned from files.
# Build context: deploy/. There is no Debian package and no local stand-in: this image needs the registry,
# which is why compose starts it only with `--profile grafana`.
ARG GRAFANA_BASE=grafana/grafana:11.3.0
FROM ${GRAFANA_BASE}
COPY grafana/provisioning /etc/grafana/provisioning
COPY grafana/dashboards /var/lib/grafana/dashboards
EXPOSE 3000
