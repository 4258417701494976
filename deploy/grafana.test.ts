/**
 * The Grafana provisioning cannot run here (no Debian package, no registry), so the files are checked: the
 * dashboard is valid JSON whose panels use the provisioned datasource, shows what
 * docs/architecture.md, 'Metrics' promises, marks faults as annotations, and every PromQL expression parses
 * in a real Prometheus.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { freePort } from '../services/supervisor/testing/nats-server.ts';

const GRAFANA = fileURLToPath(new URL('./grafana/', import.meta.url));
const PROMETHEUS_BIN = process.env['PROMETHEUS_BIN'] ?? '/usr/bin/prometheus';

type Target = { expr: string; datasource: { uid: string }; refId: string };
type Panel = {
  id: number;
  type: string;
  title: string;
  datasource?: { uid: string };
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: Target[];
};
type Annotation = { name: string; expr?: string; datasource: { uid: string }; enable: boolean };
type Dashboard = { uid: string; title: string; panels: Panel[]; annotations: { list: Annotation[] } };

const dashboard = JSON.parse(
  readFileSync(path.join(GRAFANA, 'dashboards/kernel-styles.json'), 'utf8'),
) as Dashboard;
const datasources = parse(
  readFileSync(path.join(GRAFANA, 'provisioning/datasources/prometheus.yml'), 'utf8'),
) as {
  datasources: { uid: string; url: string; type: string }[];
};
const provider = parse(
  readFileSync(path.join(GRAFANA, 'provisioning/dashboards/kernel-styles.yml'), 'utf8'),
) as {
  providers: { options: { path: string } }[];
};
const queries = dashboard.panels.flatMap((panel) => panel.targets ?? []);
const annotationQueries = dashboard.annotations.list.filter((a) => a.expr !== undefined);
const allExprs = [...queries.map((q) => q.expr), ...annotationQueries.map((a) => a.expr!)];

const jaegerSources = parse(
  readFileSync(path.join(GRAFANA, 'provisioning/datasources/jaeger.yml'), 'utf8'),
) as { datasources: { uid: string; url: string; type: string; isDefault?: boolean }[] };
const compose = parse(readFileSync(fileURLToPath(new URL('./docker-compose.yml', import.meta.url)), 'utf8'), {
  merge: true,
}) as { services: Record<string, { profiles?: string[]; ports?: string[] }> };

describe('deploy/grafana provisioning', () => {
  it("provisions the compose stack's Jaeger as a second datasource, beside Prometheus as the default", () => {
    const [jaeger] = jaegerSources.datasources;
    assert.equal(jaeger?.type, 'jaeger');
    const url = new URL(jaeger!.url);
    const service = compose.services[url.hostname];
    assert.ok(service, `${jaeger!.url} names no compose service`);
    assert.deepEqual(service.profiles, ['traces']);
    assert.ok(
      service.ports?.some((p) => p.endsWith(`:${url.port}`)),
      `the jaeger service serves its UI and query API on ${url.port}`,
    );
    assert.notEqual(jaeger!.uid, datasources.datasources[0]!.uid);
    assert.equal(jaeger!.isDefault, false, 'the dashboard queries Prometheus, the default');
  });

  it('provisions the Prometheus of the compose stack and loads dashboards from where the image puts them', () => {
    const [source] = datasources.datasources;
    assert.equal(source?.type, 'prometheus');
    assert.equal(source?.url, 'http://prometheus:9090');
    const dockerfile = readFileSync(
      fileURLToPath(new URL('./docker/grafana.Dockerfile', import.meta.url)),
      'utf8',
    );
    assert.ok(dockerfile.includes(`COPY grafana/dashboards ${provider.providers[0]?.options.path}`));
  });

  it('uses that datasource in every panel, query and annotation', () => {
    const uid = datasources.datasources[0]!.uid;
    for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) {
      assert.equal(panel.datasource?.uid, uid, panel.title);
      assert.ok((panel.targets ?? []).length > 0, `${panel.title} has a query`);
      for (const target of panel.targets ?? []) assert.equal(target.datasource.uid, uid, panel.title);
    }
    for (const annotation of annotationQueries) assert.equal(annotation.datasource.uid, uid, annotation.name);
  });

  it('shows rate, errors, p50 and p99 per style, supervisor metrics and the client side', () => {
    const has = (pattern: RegExp, what: string) =>
      assert.ok(
        queries.some((q) => pattern.test(q.expr)),
        `no panel queries ${what}`,
      );
    has(/sum by \(style\) \(rate\(kstyles_http_request_duration_seconds_count/, 'request rate per style');
    has(/code=~"5\.\."/, 'the 5xx error rate');
    has(
      /histogram_quantile\(0\.5, sum by \(style, le\) \(rate\(kstyles_http_request_duration_seconds_bucket/,
      'p50',
    );
    has(
      /histogram_quantile\(0\.99, sum by \(style, le\) \(rate\(kstyles_http_request_duration_seconds_bucket/,
      'p99',
    );
    has(/kstyles_supervisor_restarts_total/, 'supervisor restarts');
    has(/kstyles_supervisor_service_up/, 'supervised services up');
    has(/kstyles_load_requests_total/, 'client-side outcomes');
    has(/kstyles_load_request_duration_seconds_bucket/, 'client-side latency');
  });

  it('marks injected faults as annotations', () => {
    assert.ok(
      annotationQueries.some((a) => a.enable && a.expr!.includes('kstyles_load_faults_injected_total')),
      'an enabled annotation on kstyles_load_faults_injected_total',
    );
  });

  it('has unique panel ids and a layout that fits the 24-column grid without overlaps', () => {
    const ids = dashboard.panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
    const cells = new Map<string, string>();
    for (const panel of dashboard.panels) {
      const { x, y, w, h } = panel.gridPos;
      assert.ok(x >= 0 && w > 0 && x + w <= 24, `${panel.title}: x ${x} + w ${w} within 24 columns`);
      for (let i = x; i < x + w; i++) {
        for (let j = y; j < y + h; j++) {
          const key = `${i},${j}`;
          assert.ok(!cells.has(key), `${panel.title} overlaps ${cells.get(key)}`);
          cells.set(key, panel.title);
        }
      }
    }
  });

  describe('every PromQL expression parses in a real Prometheus', () => {
    let proc: ChildProcess | undefined;
    let dir = '';
    let base = '';
    let startError: string | undefined;

    before(async () => {
      dir = mkdtempSync(path.join(os.tmpdir(), 'kstyles-prom-'));
      const port = await freePort();
      base = `http://127.0.0.1:${port}`;
      const config = path.join(dir, 'prometheus.yml');
      await import('node:fs/promises').then((fs) => fs.writeFile(config, 'global: {}\n'));
      proc = spawn(
        PROMETHEUS_BIN,
        [
          `--config.file=${config}`,
          `--storage.tsdb.path=${dir}/data`,
          `--web.listen-address=127.0.0.1:${port}`,
        ],
        { stdio: 'ignore' },
      );
      proc.once('error', (err) => {
        startError = err.message;
      });
      const until = Date.now() + 15_000;
      while (Date.now() < until && !startError) {
        try {
          if ((await fetch(`${base}/-/ready`)).ok) return;
        } catch {}
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      startError ??= 'did not become ready within 15 s';
    });
    after(() => {
      proc?.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    });

    it('has no syntax errors', async (t) => {
      if (startError) {
        t.skip(`prometheus at ${PROMETHEUS_BIN} cannot run (${startError}): apt-get install -y prometheus`);
        return;
      }
      for (const expr of allExprs) {
        const query = expr.replaceAll('$__rate_interval', '1m').replaceAll('$__interval', '15s');
        const res = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(query)}`);
        const body = (await res.json()) as { status: string; error?: string };
        assert.equal(body.status, 'success', `${expr}: ${body.error}`);
      }
    });
  });
});
