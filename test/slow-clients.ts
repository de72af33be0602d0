import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';

export interface SlowClient {
  /** Resolves once the server has closed the connection: what it sent, and when. */
  closed: Promise<{ text: string; ms: number }>;
  stop: () => void;
}

/**
 * A client that sends `head` at once, then `trickle` one byte a second, as a slowloris or a bad
 * network would; it never ends the request itself.
 */
export function slowClient(port: number, head: string, trickle: string): SlowClient {
  const socket = connect(port, '127.0.0.1');
  const started = performance.now();
  let text = '';
  let sent = 0;
  socket.on('error', () => undefined);
  socket.on('data', (chunk) => (text += chunk.toString()));
  socket.write(head);
  const timer = setInterval(() => {
    if (sent < trickle.length && socket.writable) socket.write(trickle[sent++]);
  }, 1000);
  const closed = new Promise<{ text: string; ms: number }>((resolve) =>
    socket.on('close', () => {
      clearInterval(timer);
      resolve({ text, ms: performance.now() - started });
    }),
  );
  return {
    closed,
    stop: () => {
      clearInterval(timer);
      socket.destroy();
    },
  };
}

/** The status, headers and JSON body of one raw HTTP/1.1 response. */
export function parseResponse(text: string): {
  status: number;
  headers: Record<string, string>;
  body: any;
} {
  const [head, body] = text.split('\r\n\r\n');
  const [statusLine, ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  return {
    status: Number(statusLine.split(' ')[1]),
    headers,
    body: body ? JSON.parse(body) : null,
  };
}
