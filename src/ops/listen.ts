import { isIP } from 'node:net';
import { EXIT, ExitError } from '../core/errors.ts';

export interface ListenAddress {
  host: string;
  port: number;
  /** A loopback address: only this machine can scrape. */
  loopback: boolean;
}

/**
 * `--listen ADDR`: `PORT` alone binds 127.0.0.1 (metrics say which environments exist and when
 * their keys rotate: not for everyone on the network by default); `HOST:PORT` and `[V6]:PORT`
 * bind what they name, which the daemon then warns about when it is not loopback.
 */
export function parseListen(value: string): ListenAddress {
  const m = /^(?:(\[[0-9a-fA-F:.]+\]|[^:[\]]+):)?(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65_535) {
    throw new ExitError(EXIT.usage, `--listen ${JSON.stringify(value)}: expected PORT (127.0.0.1:PORT), HOST:PORT or [IPv6]:PORT, e.g. --listen 9464`);
  }
  const host = m[1] ? m[1].replace(/^\[|\]$/g, '') : '127.0.0.1';
  if (m[1] && host !== 'localhost' && !isIP(host)) {
    throw new ExitError(EXIT.usage, `--listen ${JSON.stringify(value)}: the host must be an IP address or localhost (a name could resolve anywhere)`);
  }
  return { host, port, loopback: isLoopback(host) };
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
