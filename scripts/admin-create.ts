/**
 * `npm run admin:create -- --email ada@example.com`: makes that account an administrator, creating
 * it when there is none (the database too, and its migrations, like migrate.ts). The password is
 * taken from ADMIN_PASSWORD, else asked for on a terminal (twice, not echoed), else read from the
 * first line of stdin; never from the command line, where it would land in the shell history and
 * in `ps`. It is only used for a new account: an existing one keeps its password.
 *
 * Exit codes: 0 done; 2 bad usage or configuration (nothing was changed); 1 any other failure;
 * 130 cancelled at the prompt.
 */
import { ensureAdmin } from '@app/auth';
import { ConfigError, loadConfig } from '@app/config';
import { buildDataSourceOptions, ensureDatabase, runMigrations } from '@app/database';
import hiddenPrompt from '@inquirer/password';
import { createInterface } from 'node:readline';
import { DataSource } from 'typeorm';

const USAGE =
  'usage: npm run admin:create -- --email <address>  ' +
  '(password from ADMIN_PASSWORD, a prompt, or the first line of stdin)';

/** Refused before anything is touched: exit 2. */
class UsageError extends Error {}

function parseEmail(args: string[]): string {
  let email: string | undefined;
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i] ?? '';
    if (arg === '--email') {
      email = args[i + 1];
      i += 1;
    } else if (arg.startsWith('--email=')) {
      email = arg.slice('--email='.length);
    } else {
      // Not echoed: a stray argument could be a password typed on the command line.
      throw new UsageError(`unexpected argument; ${USAGE}`);
    }
  }
  if (email === undefined || email.trim() === '') throw new UsageError(USAGE);
  return email;
}

async function firstLineOfStdin(): Promise<string | undefined> {
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  try {
    for await (const line of lines) return line;
    return undefined;
  } finally {
    lines.close();
    // Whatever follows the first line is not ours to wait for.
    process.stdin.destroy();
  }
}

async function readPassword(): Promise<string | undefined> {
  // Empty counts as unset, as it does for every variable in libs/config.
  const fromEnvironment = process.env.ADMIN_PASSWORD;
  if (fromEnvironment) return fromEnvironment;
  if (!process.stdin.isTTY) return firstLineOfStdin();
  // Inquirer's prompt (not echoed), rather than raw-mode terminal handling of our own.
  const password = await hiddenPrompt({ message: 'Password for the administrator:' });
  // Set only when the account is created and never changed by this tool: a typo would stick.
  if ((await hiddenPrompt({ message: 'Repeat the password:' })) !== password) {
    throw new UsageError('The passwords do not match.');
  }
  return password;
}

async function main(args: string[]): Promise<string> {
  const email = parseEmail(args);
  const password = await readPassword();
  if (!password) throw new UsageError(`No password given; ${USAGE}`);
  if (password.length < 10 || password.length > 128) {
    throw new UsageError('The password must be 10 to 128 characters long.');
  }
  // Validates the email like ADMIN_EMAIL at start-up (and lower-cases it); never shows the password.
  const config = loadConfig({ ADMIN_EMAIL: email, ADMIN_PASSWORD: password });
  const admin = config.admin;
  if (admin === undefined) throw new Error('the administrator is missing from the configuration');
  await ensureDatabase(config.database.url, config.database.connectTimeoutMs);
  const dataSource = await new DataSource(
    buildDataSourceOptions(config, 'taskhub-admin-create'),
  ).initialize();
  try {
    const applied = await runMigrations(dataSource);
    if (applied.length > 0) process.stdout.write(`Applied: ${applied.join(', ')}\n`);
    const { created } = await ensureAdmin(dataSource, admin.email, admin.password);
    return created
      ? `Created administrator ${admin.email}.`
      : `${admin.email} is now an administrator (password unchanged).`;
  } finally {
    await dataSource.destroy();
  }
}

// Explicit exits: stdin may still be open (a pipe that has more to give), and would hold us.
main(process.argv.slice(2)).then(
  (done) => {
    process.stdout.write(`${done}\n`);
    process.exit(0);
  },
  (error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    if (error instanceof UsageError || error instanceof ConfigError) {
      process.stderr.write(`${message}\n`);
      process.exit(2);
    }
    // Ctrl-C at the prompt.
    if (error instanceof Error && error.name === 'ExitPromptError') process.exit(130);
    process.stderr.write(`admin:create failed: ${message}\n`);
    process.exit(1);
  },
);
