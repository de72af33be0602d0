/**
 * The Kubernetes manifests (k8s/), checked without a cluster:
 * - every object is valid against the Kubernetes API's schemas, strictly: a misspelt field fails
 *   (test/k8s-schemas.js), and a broken copy of a manifest shows that the check can fail;
 * - each container's environment is a valid production configuration that sets only variables
 *   the config reads, with the Postgres role meant for it (migrations alone may change the
 *   schema), from Secrets whose keys config.yaml's header tells how to make;
 * - the probes ask the routes and port the app serves, and startup has minutes before liveness;
 * - shutdown: the api drains longer than a readiness period, and preStop plus SHUTDOWN_TIMEOUT_MS
 *   fit the grace period;
 * - the pods run as a non-root UID >= 10000 with restricted security contexts, a read-only root
 *   filesystem (/tmp an emptyDir), no service account token, and a pinned image;
 * - scheduling, scaling and disruptions: spread over nodes and zones, autoscalers that own the
 *   replica counts (the worker's on its queues' backlog), budgets of one pod at a time, rolling
 *   deploys that never drop below the count;
 * - the network: the Ingress routes /v1 only, NetworkPolicies admit only the ingress controller,
 *   Prometheus and the Taskhub pods where each belongs, and Prometheus scrapes both apps.
 */
import { parseConfig } from '@app/config';
import { fastifyOptions } from '@app/http';
import { QUEUES, queueName } from '@app/messaging';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { configReads } from './config-reads';

const root = join(__dirname, '..');

type Labels = Record<string, string>;
interface Selector {
  matchLabels?: Labels;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}
interface PolicyRule {
  from: { podSelector?: Selector; namespaceSelector?: Selector }[];
  ports?: { protocol: string; port: number | string }[];
}
interface Probe {
  httpGet: { path: string; port: string };
  periodSeconds: number;
  failureThreshold: number;
}
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef: { name: string; key: string } };
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  ports?: { name: string; containerPort: number }[];
  env?: EnvVar[];
  envFrom?: ({ configMapRef: { name: string } } | { secretRef: { name: string } })[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
  lifecycle?: { preStop?: { sleep?: { seconds: number } } };
  securityContext?: Record<string, any>;
  volumeMounts?: { name: string; mountPath: string }[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
}
interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Labels; annotations?: Labels };
  data?: Record<string, string>;
  spec: any;
}

const manifestFiles = readdirSync(join(root, 'k8s')).filter((file) => file.endsWith('.yaml'));
const manifests: Manifest[] = manifestFiles.flatMap((file) =>
  parseAllDocuments(readFileSync(join(root, 'k8s', file), 'utf8')).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`k8s/${file}: ${doc.errors[0].message}`);
    return doc.toJS() as Manifest;
  }),
);
const find = (kind: string, name: string): Manifest => {
  const found = manifests.find((m) => m.kind === kind && m.metadata.name === name);
  if (!found) throw new Error(`k8s/ has no ${kind} ${name}`);
  return found;
};
const all = (kind: string): Manifest[] => manifests.filter((m) => m.kind === kind);

/** Each object's problems against the Kubernetes schemas, strictly (see test/k8s-schemas.js). */
function schemaProblems(objects: unknown[]): string[][] {
  const output = execFileSync(process.execPath, [join(root, 'test', 'k8s-schemas.js')], {
    input: JSON.stringify(objects),
    encoding: 'utf8',
  });
  return JSON.parse(output) as string[][];
}

/** Whether a label selector (matchLabels, matchExpressions with In) selects `labels`. */
function selects(selector: Selector, labels: Labels): boolean {
  const byLabel = Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
  const byExpression = (selector.matchExpressions ?? []).every(
    ({ key, operator, values }) => operator === 'In' && (values ?? []).includes(labels[key]),
  );
  return byLabel && byExpression;
}

/** What the Secrets the manifests expect would hold (made outside the repository). */
const SECRETS: Record<string, Record<string, string>> = {
  'taskhub-secrets': {
    JWT_SECRET: 'k'.repeat(48),
    WEBHOOK_SECRETS_KEY: 'w'.repeat(48),
    REDIS_URL: 'redis://:pw@redis:6379',
    RABBITMQ_URL: 'amqp://taskhub:pw@rabbitmq:5672',
  },
  'taskhub-database': {
    MIGRATION_DATABASE_URL: 'postgres://taskhub_migrator:pw@postgres:5432/taskhub',
    APP_DATABASE_URL: 'postgres://taskhub_app:pw@postgres:5432/taskhub',
  },
};
const secret = (name: string): Record<string, string> => {
  const found = SECRETS[name];
  if (!found) throw new Error(`no Secret ${name} is expected`);
  return found;
};

/** A container's environment: the ConfigMaps and Secrets it loads whole, then its own env. */
function environment(container: Container): Record<string, string> {
  const env: Record<string, string> = {};
  for (const from of container.envFrom ?? []) {
    if ('configMapRef' in from) Object.assign(env, find('ConfigMap', from.configMapRef.name).data);
    else Object.assign(env, secret(from.secretRef.name));
  }
  // Kubernetes: a variable in env wins over the same name from envFrom.
  for (const { name, value, valueFrom } of container.env ?? []) {
    const resolved = valueFrom
      ? secret(valueFrom.secretKeyRef.name)[valueFrom.secretKeyRef.key]
      : value;
    if (resolved === undefined) throw new Error(`${container.name}: ${name} has no value`);
    env[name] = resolved;
  }
  return env;
}

const version = (
  JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }
).version;
const MIGRATE = ['node', 'dist/apps/api/apps/api/src/migrate.js', 'run'];

const APPS = [
  {
    app: 'api',
    portVariable: 'PORT',
    entry: undefined,
    databaseKey: 'APP_DATABASE_URL',
  },
  {
    app: 'worker',
    portVariable: 'WORKER_PORT',
    entry: 'dist/apps/worker/apps/worker/src/main.js',
    databaseKey: 'APP_DATABASE_URL',
  },
] as const;

describe('k8s: every object', () => {
  it('is valid against the Kubernetes schemas, with no field they do not name', () => {
    const problems = schemaProblems(manifests);
    expect(
      manifests.map((m, i) => ({ object: `${m.kind} ${m.metadata.name}`, problems: problems[i] })),
    ).toEqual(manifests.map((m) => ({ object: `${m.kind} ${m.metadata.name}`, problems: [] })));
  });

  it('fails that check when broken: a misspelt field, a wrong type, an unknown kind', () => {
    const deployment = structuredClone(find('Deployment', 'taskhub-api'));
    deployment.spec.template.spec.containers[0].imagePulPolicy = 'Always';
    deployment.spec.template.spec.topologySpreadConstraints[1].whenUnsatisfable = 'DoNotSchedule';
    deployment.spec.revisionHistoryLimit = 'ten';
    const monitor = structuredClone(find('PodMonitor', 'taskhub'));
    monitor.spec.podMetricsEndpoints[0].paht = '/metrics';
    const unknown = { ...find('Service', 'taskhub-api'), apiVersion: 'v2' };
    const [forDeployment, forMonitor, forUnknown] = schemaProblems([deployment, monitor, unknown]);
    expect(forDeployment).toEqual(
      expect.arrayContaining([
        '/spec/template/spec/containers/0/imagePulPolicy: not a field of the schema',
        '/spec/template/spec/topologySpreadConstraints/1/whenUnsatisfable: not a field of the schema',
        expect.stringMatching(/\/spec\/revisionHistoryLimit must be integer/),
      ]),
    );
    expect(forDeployment).toHaveLength(3);
    expect(forMonitor).toEqual(['/spec/podMetricsEndpoints/0/paht: not a field of the schema']);
    expect(forUnknown).toEqual(['no schema for apiVersion v2, kind Service']);
  });

  it('names no namespace (applied with -n), and pins every image to the release', () => {
    expect(manifests.filter((m) => m.metadata.namespace !== undefined)).toEqual([]);
    const images = all('Deployment').flatMap((d) =>
      [...(d.spec.template.spec.initContainers ?? []), ...d.spec.template.spec.containers].map(
        (c: Container) => c.image,
      ),
    );
    expect(images.length).toBeGreaterThan(0);
    for (const image of images) {
      expect(image).toMatch(/^[^:]+:\w[\w.-]*$/); // tagged
      expect(image).not.toMatch(/:latest$/);
      expect(image).toBe(`taskhub:${version}`);
    }
  });
});

describe('k8s: the Secrets', () => {
  it('are the ones config.yaml tells how to make, with the same keys', () => {
    const header = readFileSync(join(root, 'k8s', 'config.yaml'), 'utf8');
    const documented: Record<string, string[]> = {};
    let current: string[] = [];
    for (const line of header.split('\n')) {
      const created = /kubectl create secret generic ([\w-]+)/.exec(line);
      if (created) documented[created[1]] = current = [];
      const literal = /--from-literal=(\w+)=/.exec(line);
      if (literal) current.push(literal[1]);
    }
    expect(
      Object.fromEntries(Object.entries(documented).map(([name, keys]) => [name, keys.sort()])),
    ).toEqual(
      Object.fromEntries(
        Object.entries(SECRETS).map(([name, keys]) => [name, Object.keys(keys).sort()]),
      ),
    );
  });
});

describe.each(APPS)('k8s: taskhub-$app', ({ app, portVariable, entry, databaseKey }) => {
  const deployment = find('Deployment', `taskhub-${app}`);
  const pod = deployment.spec.template.spec;
  const container = pod.containers[0] as Container;
  const initContainers = (pod.initContainers ?? []) as Container[];
  const everyContainer = [...initContainers, container];
  const podLabels = deployment.spec.template.metadata.labels as Labels;

  it('has a valid production configuration, and sets only variables the config reads', () => {
    const env = environment(container);
    const config = parseConfig(env);
    expect(config.env).toBe('production');
    expect(config.jwt.usingDevelopmentSecret).toBe(false);
    expect(Object.keys(env).filter((name) => !configReads(env, name))).toEqual([]);
  });

  it('connects to Postgres as its own role, which may not migrate, so it does not', () => {
    expect(container.env).toContainEqual({
      name: 'DATABASE_URL',
      valueFrom: { secretKeyRef: { name: 'taskhub-database', key: databaseKey } },
    });
    expect(environment(container).DATABASE_MIGRATE_ON_START).toBe('false');
    // The Secret of the database roles is never loaded whole, so no other role's URL is there.
    for (const c of everyContainer) {
      expect(c.envFrom).not.toContainEqual({ secretRef: { name: 'taskhub-database' } });
    }
  });

  it('migrates first, in an init container, as the role that owns the schema', () => {
    expect(initContainers.map((c) => c.name)).toEqual(['migrate']);
    const [migrate] = initContainers;
    expect(migrate.command).toBeUndefined(); // the image's entrypoint (tini)
    expect(migrate.args).toEqual(MIGRATE);
    expect(existsSync(join(root, MIGRATE[1]))).toBe(true); // after `npm run build`
    expect(migrate.env).toContainEqual({
      name: 'DATABASE_URL',
      valueFrom: { secretKeyRef: { name: 'taskhub-database', key: 'MIGRATION_DATABASE_URL' } },
    });
    const env = environment(migrate);
    const config = parseConfig(env);
    expect(config.env).toBe('production');
    expect(Object.keys(env).filter((name) => !configReads(env, name))).toEqual([]);
    expect(env.DATABASE_MIGRATE_ON_START).toBeUndefined();
    // A migration's statements, and the wait behind another pod's migration, outlast the apps'.
    expect(config.database.statementTimeoutMs).toBeGreaterThan(
      parseConfig(environment(container)).database.statementTimeoutMs,
    );
    // The same step in both Deployments: whichever pod starts first migrates.
    const other = find('Deployment', `taskhub-${app === 'api' ? 'worker' : 'api'}`);
    expect(other.spec.template.spec.initContainers).toEqual(pod.initContainers);
  });

  it('probes /health/live and /health/ready on the port the app listens on', () => {
    const port = Number(environment(container)[portVariable]);
    const named = container.ports?.find((p) => p.name === container.readinessProbe?.httpGet.port);
    expect(named?.containerPort).toBe(port);
    expect(container.livenessProbe?.httpGet).toEqual({ path: '/health/live', port: named?.name });
    expect(container.readinessProbe?.httpGet).toEqual({ path: '/health/ready', port: named?.name });
    expect(container.startupProbe?.httpGet).toEqual({ path: '/health/live', port: named?.name });
  });

  it('has minutes to start before liveness may restart it', () => {
    const budget = (probe: Probe) => probe.periodSeconds * probe.failureThreshold;
    // A migration lock once held the worker 40 s before it listened; liveness alone allows 30.
    expect(budget(container.startupProbe!)).toBeGreaterThanOrEqual(180);
    expect(budget(container.startupProbe!)).toBeGreaterThan(budget(container.livenessProbe!));
  });

  it('drains longer than a readiness period, and shuts down within the grace period', () => {
    const { shutdown } = parseConfig(environment(container));
    const probe = container.readinessProbe!;
    // The api is out of the Service's endpoints before its listener closes: one failed probe,
    // plus a period of slack. (The worker takes no traffic through a Service.)
    if (app === 'api') {
      expect(shutdown.drainDelayMs).toBeGreaterThanOrEqual(
        (probe.periodSeconds * probe.failureThreshold + probe.periodSeconds) * 1000,
      );
    }
    expect(shutdown.timeoutMs).toBeLessThan(pod.terminationGracePeriodSeconds * 1000);
  });

  it('fits preStop, then the whole shutdown and 5 s of margin, in the grace period', () => {
    const { shutdown } = parseConfig(environment(container));
    const preStop = container.lifecycle?.preStop;
    // The api leaves the endpoints while preStop sleeps (the kubelet's own sleep: no binary
    // needed); the worker has no endpoints, and no preStop.
    if (app === 'api') expect(preStop?.sleep?.seconds).toBeGreaterThan(0);
    else expect(preStop).toBeUndefined();
    const preStopSeconds = preStop?.sleep?.seconds ?? 0;
    expect(preStopSeconds + shutdown.timeoutMs / 1000 + 5).toBeLessThanOrEqual(
      pod.terminationGracePeriodSeconds,
    );
  });

  it("runs the image's entrypoint (tini) as a non-root user of UID and GID 10000 or above", () => {
    expect(container.command).toBeUndefined();
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(pod.securityContext.runAsUser).toBeGreaterThanOrEqual(10000);
    expect(pod.securityContext.runAsGroup).toBeGreaterThanOrEqual(10000);
    // The image's own user, by number: the one the pods run as.
    const { runAsUser, runAsGroup } = pod.securityContext;
    expect(readFileSync(join(root, 'Dockerfile'), 'utf8')).toMatch(
      new RegExp(`^USER ${runAsUser}:${runAsGroup}$`, 'm'),
    );
    if (entry) {
      expect(container.args).toEqual(['node', entry]);
      expect(existsSync(join(root, entry))).toBe(true); // after `npm run build`
    } else {
      expect(container.args).toBeUndefined(); // the image's default command: the api
    }
  });

  it('runs every container restricted: no escalation, no capabilities, a read-only root', () => {
    expect(pod.automountServiceAccountToken).toBe(false);
    const tmp = (pod.volumes ?? []).find((v: { name: string }) =>
      everyContainer.every((c) =>
        c.volumeMounts?.some((m) => m.name === v.name && m.mountPath === '/tmp'),
      ),
    );
    expect(tmp?.emptyDir).toBeDefined();
    for (const c of everyContainer) {
      expect(c.securityContext).toEqual({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
        seccompProfile: { type: 'RuntimeDefault' },
      });
      // /tmp is the only writable path.
      expect(c.volumeMounts).toEqual([{ name: tmp.name, mountPath: '/tmp' }]);
      expect(c.resources?.requests?.memory).toBeDefined();
      expect(c.resources?.limits?.memory).toBeDefined();
    }
  });

  it('spreads its pods over nodes and, where it can, over zones', () => {
    const constraints = pod.topologySpreadConstraints as {
      topologyKey: string;
      whenUnsatisfiable: string;
      labelSelector: Selector;
    }[];
    const byKey = Object.fromEntries(constraints.map((c) => [c.topologyKey, c]));
    expect(byKey['kubernetes.io/hostname']?.whenUnsatisfiable).toBeDefined();
    expect(byKey['topology.kubernetes.io/zone']?.whenUnsatisfiable).toBe('ScheduleAnyway');
    for (const constraint of constraints) {
      expect(constraint.labelSelector).toEqual(deployment.spec.selector);
      expect(selects(constraint.labelSelector, podLabels)).toBe(true);
    }
  });

  it('is scaled by an autoscaler that owns the count, and disrupted one pod at a time', () => {
    expect(deployment.spec.strategy.rollingUpdate.maxUnavailable).toBe(0);
    // No replicas in the manifest: every `kubectl apply` would reset the autoscaler's count.
    expect(deployment.spec.replicas).toBeUndefined();
    const hpa = find('HorizontalPodAutoscaler', `taskhub-${app}`);
    expect(hpa.apiVersion).toBe('autoscaling/v2');
    expect(hpa.spec.scaleTargetRef).toEqual({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      name: deployment.metadata.name,
    });
    expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);
    expect(hpa.spec.maxReplicas).toBeGreaterThan(hpa.spec.minReplicas);
    expect(hpa.spec.behavior.scaleDown.stabilizationWindowSeconds).toBeGreaterThanOrEqual(60);
    const budget = find('PodDisruptionBudget', `taskhub-${app}`);
    expect(budget.spec.selector).toEqual(deployment.spec.selector);
    expect(budget.spec.maxUnavailable).toBe(1);
    // At the autoscaler's minimum, an eviction leaves the api a majority of its pods, and the
    // worker's queues a consumer.
    const left = hpa.spec.minReplicas - budget.spec.maxUnavailable;
    if (app === 'api') expect(left).toBeGreaterThan(hpa.spec.minReplicas / 2);
    else expect(left).toBeGreaterThanOrEqual(1);
  });

  it('is reachable only from the namespaces that need it, on its http port', () => {
    const policies = all('NetworkPolicy').filter((p) => selects(p.spec.podSelector, podLabels));
    expect(policies).toHaveLength(1);
    const [policy] = policies;
    expect(policy.spec.policyTypes).toEqual(['Ingress']); // egress stays open: webhooks
    const sources = (policy.spec.ingress as PolicyRule[]).map((rule) => ({
      namespaces: rule.from.map((f) => f.namespaceSelector?.matchLabels),
      ports: rule.ports,
    }));
    const allowed = app === 'api' ? ['ingress-nginx', 'monitoring'] : ['monitoring'];
    expect(sources).toEqual(
      allowed.map((name) => ({
        namespaces: [{ 'kubernetes.io/metadata.name': name }],
        ports: [{ protocol: 'TCP', port: 'http' }],
      })),
    );
  });

  it('is scraped by Prometheus on /metrics', () => {
    const monitors = all('PodMonitor').filter((m) => selects(m.spec.selector, podLabels));
    expect(monitors).toHaveLength(1);
    const [endpoint] = monitors[0].spec.podMetricsEndpoints;
    expect(endpoint).toMatchObject({ port: 'http', path: '/metrics' });
    expect(container.ports?.map((p) => p.name)).toContain(endpoint.port);
  });
});

describe('k8s: the api', () => {
  const deployment = find('Deployment', 'taskhub-api');
  const container = deployment.spec.template.spec.containers[0] as Container;
  const config = parseConfig(environment(container));

  it('is reached through a Service on the pods’ http port', () => {
    const service = find('Service', 'taskhub-api');
    expect(service.spec.selector).toEqual(deployment.spec.selector.matchLabels);
    expect(service.spec.ports[0].targetPort).toBe('http');
  });

  it('scales on CPU, which its pods request', () => {
    const hpa = find('HorizontalPodAutoscaler', 'taskhub-api');
    expect(hpa.spec.metrics).toEqual([
      {
        type: 'Resource',
        resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } },
      },
    ]);
    expect(container.resources?.requests?.cpu).toBeDefined(); // Utilization is of the request
  });

  it('is exposed through the Ingress under /v1 only: no /metrics, /docs or /health', () => {
    const ingress = find('Ingress', 'taskhub-api');
    const service = find('Service', 'taskhub-api');
    expect(ingress.spec.ingressClassName).toBe('nginx');
    const paths = (ingress.spec.rules as { http: { paths: { path: string }[] } }[]).flatMap(
      (rule) => rule.http.paths,
    );
    expect(paths).toEqual([
      {
        path: '/v1',
        pathType: 'Prefix',
        backend: { service: { name: service.metadata.name, port: { name: 'http' } } },
      },
    ]);
    // Prefix matches whole path elements.
    const routed = (url: string) =>
      paths.some(({ path }) => url === path || url.startsWith(`${path}/`));
    expect(routed('/v1/tasks')).toBe(true);
    for (const url of [
      '/metrics',
      '/docs',
      '/docs-json',
      '/health/live',
      '/health/ready',
      '/v10',
    ]) {
      expect(routed(url)).toBe(false);
    }
  });

  it("refuses bodies over the api's limit at the Ingress, and trusts its one hop", () => {
    const ingress = find('Ingress', 'taskhub-api');
    const size = /^(\d+)([km]?)$/.exec(
      ingress.metadata.annotations?.['nginx.ingress.kubernetes.io/proxy-body-size'] ?? '',
    );
    const units: Record<string, number> = { '': 1, k: 1024, m: 1024 * 1024 };
    const bytes = Number(size?.[1]) * (units[size?.[2] ?? ''] ?? NaN);
    expect(bytes).toBe(fastifyOptions(config).bodyLimit);
    expect(config.trustProxy).toBe(1);
  });
});

describe('k8s: the worker', () => {
  const deployment = find('Deployment', 'taskhub-worker');
  const container = deployment.spec.template.spec.containers[0] as Container;
  const config = parseConfig(environment(container));

  it("scales on the backlog of its own queues, as RabbitMQ's Prometheus plugin counts it", () => {
    const hpa = find('HorizontalPodAutoscaler', 'taskhub-worker');
    expect(hpa.spec.metrics).toHaveLength(1);
    const [{ type, external }] = hpa.spec.metrics;
    expect(type).toBe('External');
    expect(external.metric.name).toBe('rabbitmq_queue_messages_ready');
    expect(external.target.type).toBe('AverageValue');
    // The queues the worker consumes, by their broker-side names: not their retry and
    // dead-letter queues, where messages wait on purpose.
    expect(external.metric.selector).toEqual({
      matchExpressions: [
        {
          key: 'queue',
          operator: 'In',
          values: Object.values(QUEUES).map((queue) => queueName(config, queue)),
        },
      ],
    });
  });

  it('documents the metrics adapter rule, and has RabbitMQ scraped per queue', () => {
    const text = readFileSync(join(root, 'k8s', 'worker.yaml'), 'utf8');
    expect(text).toMatch(/prometheus-adapter/);
    expect(text).toMatch(/seriesQuery: 'rabbitmq_queue_messages_ready\{/);
    expect(text).toMatch(/metricsQuery: 'sum\(<<\.Series>>\{<<\.LabelMatchers>>\}\)'/);
    const rabbitmq = { 'app.kubernetes.io/name': 'rabbitmq' };
    const monitors = all('PodMonitor').filter((m) => selects(m.spec.selector, rabbitmq));
    const paths = monitors.map((m) => (m.spec.podMetricsEndpoints as { path: string }[])[0].path);
    expect(paths).toEqual(['/metrics/per-object']);
  });
});

describe('k8s: Postgres, Redis and RabbitMQ', () => {
  const appPods = all('Deployment').map((d) => d.spec.template.metadata.labels as Labels);

  it.each([
    ['postgres', 5432],
    ['redis', 6379],
    ['rabbitmq', 5672],
  ])('%s is reachable on its port from the Taskhub pods and its own only', (name, port) => {
    const labels = { 'app.kubernetes.io/name': name };
    const policies = all('NetworkPolicy').filter((p) => selects(p.spec.podSelector, labels));
    expect(policies).toHaveLength(1);
    const rules = policies[0].spec.ingress as PolicyRule[];
    const fromPods = rules.filter((rule) => rule.from.every((f) => f.podSelector));
    // The client port: every Taskhub pod (the apps and their migration step), nothing else.
    const clients = fromPods.filter((rule) => rule.ports !== undefined);
    expect(clients).toHaveLength(1);
    expect(clients[0].ports).toEqual([{ protocol: 'TCP', port }]);
    for (const pod of appPods) {
      expect(clients[0].from.some((f) => f.podSelector && selects(f.podSelector, pod))).toBe(true);
    }
    // Its own pods (replication, clustering), on any port.
    const peers = fromPods.filter((rule) => rule.ports === undefined);
    expect(peers.map((rule) => rule.from)).toEqual([[{ podSelector: { matchLabels: labels } }]]);
    // From another namespace: only Prometheus, to RabbitMQ's metrics port.
    const others = rules.filter((rule) => !fromPods.includes(rule));
    expect(others).toEqual(
      name === 'rabbitmq'
        ? [
            {
              from: [
                {
                  namespaceSelector: {
                    matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' },
                  },
                },
              ],
              ports: [{ protocol: 'TCP', port: 15692 }],
            },
          ]
        : [],
    );
  });
});
