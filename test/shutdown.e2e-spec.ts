import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, runBuilt, waitFor } from './processes';
import { parseResponse, slowClient } from './slow-clients';

/**
 * A rolling deploy drops no request (CONTRACT §8): the built api under a steady 200 req/s gets
 * SIGTERM. A stand-in load balancer polls readiness every 200 ms and stops sending to the
 * instance once it says 503, as Kubernetes would; within the drain delay, every request sent
 * must succeed, and the process must exit 0 within 30 s.
 */
describe('SIGTERM under a steady 200 req/s', () => {
  it('fails no request, and exits 0 within 30 s', async () => {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const run = runBuilt('api', { PORT: String(port), SHUTDOWN_DRAIN_DELAY_MS: '1500' });
    try {
      await waitFor(`${base}/health/ready`);
      const registered = await fetch(`${base}/v1/auth/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          email: `s-${Date.now()}@example.test`,
          password: 'secret password 1',
          name: 'S',
        }),
      });
      const { accessToken } = (await registered.json()) as { accessToken: string };
      const auth = { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json' };

      let inRotation = true;
      const balancer = (async () => {
        while (inRotation) {
          const ready = await fetch(`${base}/health/ready`).catch(() => undefined);
          if (ready?.status !== 200) inRotation = false;
          else await sleep(200);
        }
      })();

      const requests: Promise<number>[] = [];
      let signalledAt = 0;
      const started = Date.now();
      // A request every 5 ms, reads and writes, for as long as the balancer sends traffic here.
      for (let i = 0; inRotation && Date.now() - started < 10_000; i += 1) {
        if (i === 300) {
          signalledAt = Date.now();
          run.child.kill('SIGTERM');
        }
        requests.push(
          (i % 4 === 0
            ? fetch(`${base}/v1/tasks`, {
                method: 'POST',
                headers: auth,
                body: JSON.stringify({ title: `t${i}` }),
              })
            : fetch(`${base}/v1/tasks?limit=5`, { headers: auth })
          ).then(
            (response) => response.status,
            () => 0,
          ),
        );
        await sleep(5);
      }
      await balancer;
      const statuses = await Promise.all(requests);
      const failed = statuses.filter((status) => status < 200 || status > 299);
      expect(signalledAt).toBeGreaterThan(0);
      expect(statuses.length).toBeGreaterThan(300);
      expect(failed).toEqual([]);
      const exit = await run.exited;
      expect(exit).toEqual({ code: 0, signal: null });
      expect(Date.now() - signalledAt).toBeLessThan(30_000);
    } finally {
      run.child.kill('SIGKILL');
    }
  });
});

/**
 * Uploads that never finish arriving do not hold a shutdown open (issue 13, item 5): with 50
 * bodies sent a byte a second (far inside the default 30 s request bound), SIGTERM closes them
 * with a 408 problem once the drain delay has passed, while a request already in its handler
 * finishes, and the process exits 0 well within the shutdown timeout.
 */
describe('SIGTERM with 50 slow uploads in flight', () => {
  it('answers them 408, lets a request in its handler finish, and exits 0 quickly', async () => {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const run = runBuilt('api', { PORT: String(port), SHUTDOWN_DRAIN_DELAY_MS: '500' });
    try {
      await waitFor(`${base}/health/ready`);
      const body = JSON.stringify({ email: 'slow@example.test', password: 'a long password' });
      const head =
        'POST /v1/auth/login HTTP/1.1\r\nHost: taskhub.test\r\nContent-Type: application/json\r\n' +
        `Content-Length: ${body.length}\r\n\r\n`;
      const uploads = Array.from({ length: 50 }, () => slowClient(port, head, body));
      await sleep(1500); // every upload has begun its body
      // A request in its handler when the signal comes: registration hashes with scrypt.
      const inFlight = fetch(`${base}/v1/auth/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          email: `s-${Date.now()}@example.test`,
          password: 'secret password 1',
          name: 'S',
        }),
      });
      await sleep(5);
      const signalledAt = Date.now();
      run.child.kill('SIGTERM');
      const closed = await Promise.all(uploads.map((upload) => upload.closed));
      for (const { text } of closed) {
        const response = parseResponse(text);
        expect(response.status).toBe(408);
        expect(response.body.code).toBe('REQUEST_TIMEOUT');
      }
      expect((await inFlight).status).toBe(201);
      const exit = await run.exited;
      expect(exit).toEqual({ code: 0, signal: null });
      // Drain delay 0.5 s, one check interval 0.5 s, then the close: 10 s is generous slack.
      expect(Date.now() - signalledAt).toBeLessThan(10_000);
    } finally {
      run.child.kill('SIGKILL');
    }
  });
});
