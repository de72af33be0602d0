/**
 * The Kubernetes manifests (k8s/), checked without a cluster: each app's environment is a valid
 * production configuration that sets only variables the config reads, the probes ask the routes
 * and port the app serves, shutdown fits the grace period and outlasts a readiness period, the
 * pods run as the image's non-root user, and a rolling deploy never drops below the replicas.
 */
import { parseConfig } from '@app/config';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { configReads } from './config-reads';

const root = join(__dirname, '..');

interface Probe {
  httpGet: { path: string; port: string };
  periodSeconds: number;
  failureThreshold: number;
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  ports: { name: string; containerPort: number }[];
  env?: { name: string; value: string }[];
  envFrom?: ({ configMapRef: { name: string } } | { secretRef: { name: string } })[];
  livenessProbe: Probe;
  readinessProbe: Probe;
}
interface Manifest {
  kind: string;
  metadata: { name: string };
  data?: Record<string, string>;
  spec: any;
}

const manifests: Manifest[] = readdirSync(join(root, 'k8s'))
  .filter((file) => file.endsWith('.yaml'))
  .flatMap((file) =>
    parseAllDocuments(readFileSync(join(root, 'k8s', file), 'utf8')).map(
      (doc) => doc.toJS() as Manifest,
    ),
  );
const find = (kind: string, name: string): Manifest => {
  const found = manifests.find((m) => m.kind === kind && m.metadata.name === name);
  if (!found) throw new Error(`k8s/ has no ${kind} ${name}`);
  return found;
};

/** What the Secret the manifests expect would hold (made outside the repository). */
const SECRETS = {
  JWT_SECRET: 'k'.repeat(48),
  WEBHOOK_SECRETS_KEY: 'w'.repeat(48),
  DATABASE_URL: 'postgres://taskhub:pw@postgres:5432/taskhub',
  REDIS_URL: 'redis://redis:6379',
  RABBITMQ_URL: 'amqp://taskhub:pw@rabbitmq:5672',
};

const APPS = [
  { app: 'api', portVariable: 'PORT', entry: undefined },
  { app: 'worker', portVariable: 'WORKER_PORT', entry: 'dist/apps/worker/apps/worker/src/main.js' },
] as const;

describe.each(APPS)('k8s: taskhub-$app', ({ app, portVariable, entry }) => {
  const deployment = find('Deployment', `taskhub-${app}`);
  const pod = deployment.spec.template.spec;
  const container = pod.containers[0] as Container;

  /** The container's environment: the ConfigMap and Secret it names, then its own env. */
  function environment(): Record<string, string> {
    const env: Record<string, string> = {};
    for (const from of container.envFrom ?? []) {
      if ('configMapRef' in from)
        Object.assign(env, find('ConfigMap', from.configMapRef.name).data);
      else {
        expect(from.secretRef.name).toBe('taskhub-secrets');
        Object.assign(env, SECRETS);
      }
    }
    for (const { name, value } of container.env ?? []) env[name] = value;
    return env;
  }

  it('has a valid production configuration, and sets only variables the config reads', () => {
    const env = environment();
    const config = parseConfig(env);
    expect(config.env).toBe('production');
    expect(config.jwt.usingDevelopmentSecret).toBe(false);
    expect(Object.keys(env).filter((name) => !configReads(env, name))).toEqual([]);
  });

  it('probes /health/live and /health/ready on the port the app listens on', () => {
    const port = Number(environment()[portVariable]);
    const named = container.ports.find((p) => p.name === container.readinessProbe.httpGet.port);
    expect(named?.containerPort).toBe(port);
    expect(container.livenessProbe.httpGet).toEqual({ path: '/health/live', port: named?.name });
    expect(container.readinessProbe.httpGet).toEqual({ path: '/health/ready', port: named?.name });
  });

  it('drains longer than a readiness period, and shuts down within the grace period', () => {
    const { shutdown } = parseConfig(environment());
    const probe = container.readinessProbe;
    // The api is out of the Service's endpoints before its listener closes: one failed probe,
    // plus a period of slack. (The worker takes no traffic through a Service.)
    if (app === 'api') {
      expect(shutdown.drainDelayMs).toBeGreaterThanOrEqual(
        (probe.periodSeconds * probe.failureThreshold + probe.periodSeconds) * 1000,
      );
    }
    expect(shutdown.timeoutMs).toBeLessThan(pod.terminationGracePeriodSeconds * 1000);
  });

  it("runs the image's entrypoint (tini) as the image's non-root user", () => {
    expect(container.command).toBeUndefined();
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001 });
    expect(readFileSync(join(root, 'Dockerfile'), 'utf8')).toMatch(/^USER 10001:10001$/m);
    if (entry) {
      expect(container.args).toEqual(['node', entry]);
      expect(existsSync(join(root, entry))).toBe(true); // after `npm run build`
    } else {
      expect(container.args).toBeUndefined(); // the image's default command: the api
    }
  });
});

describe('k8s: rolling deploys of the api', () => {
  const deployment = find('Deployment', 'taskhub-api');

  it('never go below the replica count, and disruptions keep a majority', () => {
    expect(deployment.spec.strategy.rollingUpdate.maxUnavailable).toBe(0);
    const budget = find('PodDisruptionBudget', 'taskhub-api');
    expect(budget.spec.minAvailable).toBeLessThan(deployment.spec.replicas);
    expect(budget.spec.selector.matchLabels).toEqual(deployment.spec.selector.matchLabels);
  });

  it('are reached through a Service on the pods’ http port', () => {
    const service = find('Service', 'taskhub-api');
    expect(service.spec.selector).toEqual(deployment.spec.selector.matchLabels);
    expect(service.spec.ports[0].targetPort).toBe('http');
  });
});
