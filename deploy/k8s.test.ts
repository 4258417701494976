/**
 * Structure of the Kubernetes manifests (deploy/k8s). No cluster here: the kustomization's resources are
 * read and parsed with the yaml package (and, when kubectl is installed, `kubectl kustomize` must render
 * them too), then checked: probes, limits, security contexts, labels and selectors, images, NATS users.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT as REPO } from '../cli/kit/repo.ts';
import { DEFAULT_TRANSFER } from '../services/ipc/headers.ts';
import { generateKeyPairs, NATS_KEY_ENV, NATS_ROLES } from '../services/microkernel/nats-config.ts';
import { K8S_NKEYS_SECRET, k8sSecret, k8sSecretKey } from './nats/nats-keys.ts';
import { K8S_NATS_CLUSTER, K8S_NATS_CONF_PATH, k8sNatsClusterConfig } from './nats/render-nats-conf.ts';

const K8S = fileURLToPath(new URL('./k8s/', import.meta.url));

type Probe = { httpGet?: { path: string; port: string | number } };
type Port = { name?: string; containerPort: number };
type EnvVar = { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } };
type Container = {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  ports?: Port[];
  env?: EnvVar[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: {
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    runAsNonRoot?: boolean;
    capabilities?: { drop?: string[] };
  };
  volumeMounts?: { name: string; mountPath: string }[];
};
type PodSpec = {
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
  containers: Container[];
  volumes?: { name: string; configMap?: { name: string }; persistentVolumeClaim?: { claimName: string } }[];
};
type Resource = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec?: {
    replicas?: number;
    serviceName?: string;
    clusterIP?: string;
    selector?: { matchLabels?: Record<string, string> } & Record<string, unknown>;
    template?: { metadata: { labels: Record<string, string> }; spec: PodSpec };
    ports?: { name: string; port: number; targetPort: string | number }[];
  };
};
type Kustomization = {
  namespace: string;
  resources: string[];
  images?: { name: string; newTag?: string }[];
  configMapGenerator?: { name: string; files: string[] }[];
  secretGenerator?: { name: string; literals?: string[] }[];
};

const kustomization = parseAllDocuments(
  readFileSync(path.join(K8S, 'kustomization.yaml'), 'utf8'),
)[0]!.toJS() as Kustomization;
const resources: Resource[] = kustomization.resources.flatMap((file) => {
  const text = readFileSync(path.join(K8S, file), 'utf8');
  return parseAllDocuments(text).map((doc) => {
    assert.deepEqual(doc.errors, [], `${file}: YAML errors`);
    return doc.toJS() as Resource;
  });
});
const workloads = resources.filter((r) => ['Deployment', 'StatefulSet', 'Job'].includes(r.kind));
const longRunning = workloads.filter((r) => r.kind !== 'Job');
const byName = (kind: string, name: string) =>
  resources.find((r) => r.kind === kind && r.metadata.name === name);
const containersOf = (r: Resource) => r.spec?.template?.spec.containers ?? [];
const IMAGES = new Set(['kstyles/app', 'kstyles/nats', 'kstyles-unikernel']);

const matches = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

describe('deploy/k8s (Kustomize)', () => {
  it('lists only files that exist and parse, and generates the NATS config from the checked-in file', () => {
    assert.ok(resources.length > 10);
    for (const r of resources) assert.ok(r.kind && r.metadata?.name, `${JSON.stringify(r).slice(0, 80)}`);
    const files = kustomization.configMapGenerator?.flatMap((g) => g.files) ?? [];
    for (const entry of files) assert.ok(existsSync(path.join(K8S, entry.split('=').pop()!)), entry);
  });

  it('renders with kubectl kustomize, when kubectl is installed', (t) => {
    const result = spawnSync('kubectl', ['kustomize', K8S], { encoding: 'utf8' });
    if (result.error) {
      t.skip('kubectl is not installed: the files were checked by parsing them');
      return;
    }
    assert.equal(result.status, 0, result.stderr);
    const kinds = parseAllDocuments(result.stdout).map((d) => (d.toJS() as Resource).kind);
    assert.ok(kinds.includes('ConfigMap'), 'the NATS config generator ran');
    assert.ok(
      !kinds.includes('Secret'),
      'no Secret from the repository: nats-keys.ts makes it per deployment',
    );
  });

  it('selects its own pods: every selector matches the template labels, every Service some pods', () => {
    for (const w of workloads.filter((r) => r.kind !== 'Job')) {
      const selector = w.spec?.selector?.matchLabels ?? {};
      assert.ok(Object.keys(selector).length > 0, `${w.metadata.name}: a selector`);
      assert.ok(
        matches(selector, w.spec!.template!.metadata.labels),
        `${w.metadata.name}: selector ⊆ labels`,
      );
    }
    for (const service of resources.filter((r) => r.kind === 'Service')) {
      const selector = service.spec!.selector as Record<string, string>;
      const targets = longRunning.filter((w) => matches(selector, w.spec!.template!.metadata.labels));
      assert.ok(targets.length > 0, `Service ${service.metadata.name} selects pods`);
      for (const port of service.spec!.ports ?? []) {
        const ok = targets.every((w) =>
          containersOf(w).some((c) =>
            (c.ports ?? []).some((p) => p.name === port.targetPort || p.containerPort === port.targetPort),
          ),
        );
        assert.ok(ok, `Service ${service.metadata.name}: targetPort ${port.targetPort} exists`);
      }
    }
  });

  it('gives every container limits, requests and a locked-down security context', () => {
    for (const w of workloads) {
      const pod = w.spec!.template!.spec;
      assert.equal(pod.securityContext?.runAsNonRoot, true, `${w.metadata.name}: runAsNonRoot`);
      assert.ok((pod.securityContext?.runAsUser ?? 0) > 0, `${w.metadata.name}: a non-root uid`);
      for (const c of pod.containers) {
        const what = `${w.metadata.name}/${c.name}`;
        assert.ok(c.resources?.limits?.['cpu'] && c.resources.limits['memory'], `${what}: limits`);
        assert.ok(c.resources?.requests?.['cpu'] && c.resources.requests['memory'], `${what}: requests`);
        assert.equal(c.securityContext?.readOnlyRootFilesystem, true, `${what}: read-only root`);
        assert.equal(c.securityContext?.allowPrivilegeEscalation, false, `${what}: no privilege escalation`);
        assert.deepEqual(c.securityContext?.capabilities?.drop, ['ALL'], `${what}: capabilities dropped`);
        assert.ok(IMAGES.has(c.image), `${what}: image ${c.image} is one the project builds`);
        for (const mount of c.volumeMounts ?? []) {
          assert.ok(
            pod.volumes?.some((v) => v.name === mount.name),
            `${what}: volume ${mount.name} exists`,
          );
        }
      }
    }
    const images = new Set(kustomization.images?.map((i) => i.name));
    for (const image of IMAGES) assert.ok(images.has(image), `kustomization pins ${image}`);
  });

  it('probes every long-running container; the HTTP styles on /healthz (liveness) and /readyz (readiness)', () => {
    for (const w of longRunning) {
      for (const c of containersOf(w)) {
        assert.ok(c.livenessProbe?.httpGet, `${w.metadata.name}: liveness probe`);
        assert.ok(c.readinessProbe?.httpGet, `${w.metadata.name}: readiness probe`);
      }
    }
    for (const name of ['monolith', 'unikernel', 'microkernel-gateway']) {
      const [c] = containersOf(byName('Deployment', name)!);
      assert.equal(c?.livenessProbe?.httpGet?.path, '/healthz', name);
      assert.equal(c?.readinessProbe?.httpGet?.path, '/readyz', name);
    }
  });

  it('runs NATS as a 3-node StatefulSet behind a headless Service with routes to every member', () => {
    const nats = byName('StatefulSet', K8S_NATS_CLUSTER.statefulSet)!;
    assert.equal(nats.spec?.replicas, K8S_NATS_CLUSTER.replicas);
    assert.equal(nats.spec?.serviceName, K8S_NATS_CLUSTER.headlessService);
    assert.equal(byName('Service', K8S_NATS_CLUSTER.headlessService)?.spec?.clusterIP, 'None');
    const conf = readFileSync(K8S_NATS_CONF_PATH, 'utf8');
    assert.equal(
      conf,
      k8sNatsClusterConfig(),
      'deploy/k8s/nats/nats-cluster.conf is stale: run deploy/nats/render-nats-conf.ts',
    );
    for (let i = 0; i < K8S_NATS_CLUSTER.replicas; i++) {
      assert.ok(conf.includes(`nats://nats-${i}.nats-headless:6222`), `route to nats-${i}`);
    }
    const [c] = containersOf(nats);
    // The Secret nats-keys.ts prints for this deployment holds every key the manifests name.
    const secret = parseAllDocuments(k8sSecret(generateKeyPairs()))[0]!.toJS() as {
      metadata: { name: string; namespace: string };
      stringData: Record<string, string>;
    };
    assert.deepEqual(secret.metadata, { name: K8S_NKEYS_SECRET.name, namespace: kustomization.namespace });
    for (const role of NATS_ROLES) {
      const env = c?.env?.find((e) => e.name === NATS_KEY_ENV.publicKey(role));
      assert.equal(env?.valueFrom?.secretKeyRef?.name, K8S_NKEYS_SECRET.name, role);
      const key = env?.valueFrom?.secretKeyRef?.key ?? '';
      assert.equal(key, k8sSecretKey.publicKey(role));
      assert.match(secret.stringData[key] ?? '', /^U[A-Z2-7]{55}$/, `public key of ${role}`);
    }
  });

  it('holds no NATS secret and no password: the keys come from the Secret made per deployment', () => {
    assert.equal(kustomization.secretGenerator, undefined, 'no secret generated from literals in the repo');
    for (const file of readdirSync(K8S, { recursive: true, encoding: 'utf8' })) {
      if (!/\.(ya?ml|conf)$/.test(file)) continue;
      const text = readFileSync(path.join(K8S, file), 'utf8');
      assert.doesNotMatch(text, /password|_PASS\b|SU[A-Z2-7]{56}/i, file);
    }
  });

  it("runs the microkernel's servers as Deployments, each with its own NATS user and an existing entry point", () => {
    for (const role of ['driver', 'fs', 'gateway'] as const) {
      const deployment = byName('Deployment', `microkernel-${role}`)!;
      assert.ok((deployment.spec?.replicas ?? 0) >= 2, `${role}: replicas share the queue group`);
      const [c] = containersOf(deployment);
      const entry = c?.args?.find((a) => a.endsWith('main.ts'));
      assert.equal(entry, `services/${role}/main.ts`);
      assert.ok(existsSync(path.join(REPO, entry!)), `${entry} exists`);
      const env = Object.fromEntries((c?.env ?? []).map((e) => [e.name, e]));
      assert.equal(env['KSTYLES_NATS_SEED']?.valueFrom?.secretKeyRef?.name, K8S_NKEYS_SECRET.name);
      assert.equal(env['KSTYLES_NATS_SEED']?.valueFrom?.secretKeyRef?.key, k8sSecretKey.seed(role));
      assert.equal(env['KSTYLES_NATS_PASS'], undefined, `${role}: no password`);
      assert.match(env['NATS_URL']?.value ?? '', /^nats:\/\/nats:4222$/);
      if (role === 'fs') {
        // The file server alone decides how chunk bytes travel: a valid mode, grant as everywhere else.
        assert.equal(env['KSTYLES_TRANSFER']?.value, DEFAULT_TRANSFER);
      }
    }
  });
});
