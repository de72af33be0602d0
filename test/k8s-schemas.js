// Checks Kubernetes objects against the API's schemas, as the `kubernetes-models` packages carry
// them (the core API, and @kubernetes-models/prometheus-operator for monitoring.coreos.com), and
// strictly: a field the schema does not name is a problem, as `kubectl apply --validate=strict`
// would make it. Reads a JSON array of objects on stdin and writes a JSON array with, for each
// object, its problems (none: valid).
//
// A process of its own, run by test/k8s.e2e-spec.ts: the packages are ES modules only, which Node
// imports and Jest's CommonJS runtime cannot.
//
// Strictness: each model's validate() (a compiled JSON schema) checks the fields it knows and
// passes over the rest, as JSON schemas do without additionalProperties: false. So the object is
// validated through a proxy that records every field the validator reads; a field it never read
// is one the schema does not have (a map such as `labels` is read key by key, so its keys count
// as known).

const GROUP_PACKAGES = { 'monitoring.coreos.com': '@kubernetes-models/prometheus-operator' };

async function modelOf(apiVersion, kind) {
  if (!/^([a-z0-9.-]+\/)?v[0-9a-z]+$/.test(apiVersion) || !/^[A-Z][A-Za-z]+$/.test(kind)) {
    return undefined;
  }
  const group = apiVersion.includes('/') ? apiVersion.split('/')[0] : '';
  const pkg = GROUP_PACKAGES[group] ?? 'kubernetes-models';
  try {
    return (await import(`${pkg}/${apiVersion}/${kind}`))[kind];
  } catch {
    return undefined;
  }
}

/** `value`, seen through proxies that add each field read to `reads` (by JSON pointer). */
function tracked(value, pointer, reads) {
  if (value === null || typeof value !== 'object') return value;
  const fields = reads.get(pointer) ?? new Set();
  reads.set(pointer, fields);
  return new Proxy(value, {
    get(target, key, receiver) {
      const field = Reflect.get(target, key, receiver);
      if (typeof key !== 'string') return field;
      fields.add(key);
      return tracked(field, `${pointer}/${key}`, reads);
    },
    has(target, key) {
      if (typeof key === 'string') fields.add(key);
      return Reflect.has(target, key);
    },
  });
}

/** The fields of `value` (at `pointer`, and below) that the validator never read. */
function unread(value, pointer, reads) {
  if (value === null || typeof value !== 'object') return [];
  if (Array.isArray(value)) {
    return value.flatMap((item, index) => unread(item, `${pointer}/${index}`, reads));
  }
  const fields = reads.get(pointer) ?? new Set();
  return Object.entries(value).flatMap(([key, field]) =>
    fields.has(key)
      ? unread(field, `${pointer}/${key}`, reads)
      : [`${pointer}/${key}: not a field of the schema`],
  );
}

async function problemsOf(object) {
  const { apiVersion, kind } = object ?? {};
  const Model = await modelOf(String(apiVersion), String(kind));
  if (!Model) return [`no schema for apiVersion ${apiVersion}, kind ${kind}`];
  const model = new Model(object);
  const reads = new Map();
  const problems = [];
  try {
    tracked(model, '', reads).validate();
  } catch (error) {
    problems.push(String(error.message));
  }
  return [...problems, ...unread(object, '', reads)];
}

async function main() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const objects = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  const results = [];
  for (const object of objects) results.push(await problemsOf(object));
  process.stdout.write(JSON.stringify(results));
}

main().catch((error) => {
  process.stderr.write(`${error.stack ?? error}\n`);
  process.exit(1);
});
