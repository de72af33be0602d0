// `npm start`: runs the built api and worker side by side, with their logs on this terminal
// (`node scripts/start.js api` or `... worker` runs one). Ctrl-C or SIGTERM reaches each; when
// one exits, the others are stopped and its exit code kept.
const { spawn } = require('node:child_process');
const path = require('node:path');
const { NODE_RUNTIME_FLAGS } = require('./runtime');

const root = path.join(__dirname, '..');
const apps = {
  api: path.join(root, 'dist/apps/api/apps/api/src/main.js'),
  worker: path.join(root, 'dist/apps/worker/apps/worker/src/main.js'),
};
const names = process.argv.slice(2);
for (const name of names) {
  if (!(name in apps)) {
    process.stderr.write(`start: unknown app "${name}" (api, worker)\n`);
    process.exit(2);
  }
}

const children = (names.length ? names : Object.keys(apps)).map((name) =>
  spawn(process.execPath, [...NODE_RUNTIME_FLAGS, apps[name]], {
    stdio: 'inherit',
    env: process.env,
  }),
);

let exitCode;
for (const child of children) {
  child.on('exit', (code, signal) => {
    if (exitCode === undefined) {
      exitCode = code ?? (signal ? 1 : 0);
      for (const other of children)
        if (other !== child && other.exitCode === null) other.kill('SIGTERM');
    }
    if (children.every((c) => c.exitCode !== null || c.signalCode !== null)) process.exit(exitCode);
  });
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
  });
}
