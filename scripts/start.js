// `npm start`: runs the built api and worker side by side, with their logs on this terminal.
// Ctrl-C or SIGTERM reaches both; when either exits, the other is stopped and the exit code kept.
const { spawn } = require('node:child_process');
const path = require('node:path');

const root = path.join(__dirname, '..');
const apps = {
  api: path.join(root, 'dist/apps/api/apps/api/src/main.js'),
  worker: path.join(root, 'dist/apps/worker/apps/worker/src/main.js'),
};

const children = Object.values(apps).map((file) => {
  const child = spawn(process.execPath, [file], { stdio: 'inherit', env: process.env });
  return child;
});

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
