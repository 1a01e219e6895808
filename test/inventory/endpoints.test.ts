import { describe, it, expect } from 'vitest';
import { credentialVariables } from '../../src/inventory/credentials.ts';
import { parseInventory } from '../../src/inventory/load.ts';
import { ConfigErrors } from '../../src/core/errors.ts';
import { endpointProblem, environmentEndpointProblems, isLoopbackHost } from '../../src/inventory/endpoints.ts';

/**
 * Every endpoint receives credentials: https://, or plain http:// to a loopback address only.
 * A pull request's targets.yaml must not be able to send a `token: env:ANY` to a host of its choosing.
 */
const FILE = '/inv/targets.yaml';

function inventory(target: string, key = ''): string {
  return `version: 1\n${key}environments:\n  p:\n    targets:\n      - ${target}\n`;
}

async function endpointError(text: string) {
  try {
    await parseInventory(text, FILE);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigErrors);
    return (err as ConfigErrors).errors[0]!;
  }
  throw new Error('expected the inventory to be rejected');
}

describe('loopback', () => {
  it('is 127.0.0.0/8, [::1] and localhost, nothing that merely looks like them', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '[::1]', 'localhost', 'LOCALHOST', 'localhost.']) expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['127.0.0.1.evil.example', 'localhost.evil.example', '128.0.0.1', '10.0.0.1', '[::2]', 'evil-localhost']) {
      expect(isLoopbackHost(h), h).toBe(false);
    }
  });

  it('URL forms of loopback that the WHATWG parser normalises are loopback too', () => {
    for (const u of ['http://127.1/', 'http://2130706433/', 'http://[0:0:0:0:0:0:0:1]:8080/', 'http://0x7f.0.0.1/']) expect(endpointProblem(u), u).toBeUndefined();
  });
});

describe('targets.yaml endpoints: https unless loopback, an inventory error at the field', () => {
  it('a target endpoint over plain http to another host is refused, with the position of the value', async () => {
    const text = inventory('type: heroku\n        app: api\n        endpoint: http://attacker.example/\n        token: env:AWS_SECRET_ACCESS_KEY');
    const e = await endpointError(text);
    expect(e.field).toBe('environments.p.targets[0].endpoint');
    expect(e.position).toEqual({ file: FILE, line: 7, column: 19 });
    expect(e.message).toMatch(/"http:\/\/attacker\.example\/": plain http:\/\/ is allowed only to a loopback address/);
  });

  it('applies to every URL-endpoint type, and to key.endpoint and key.admin.endpoint', async () => {
    for (const target of [
      'type: vercel\n        project: p\n        endpoint: http://10.0.0.8',
      'type: netlify\n        site: s\n        endpoint: http://proxy.internal:8080',
      'type: railway\n        project: p\n        environment: e\n        service: s\n        endpoint: http://example.com/graphql/v2',
      'type: aws-secrets-manager\n        secret: s\n        region: us-east-1\n        endpoint: http://localstack:4566',
      'type: azure-key-vault\n        vault: https://v.vault.azure.net/\n        secret: s\n        endpoint: http://v.vault.azure.net/',
    ]) {
      expect((await endpointError(inventory(target))).field, target).toMatch(/\.endpoint$/);
    }
    const dotenv = 'type: dotenv\n        path: .env';
    expect((await endpointError(inventory(dotenv, 'key:\n  endpoint: http://openai-proxy.example/v1\n'))).field).toBe('key.endpoint');
    const admin = 'key:\n  admin:\n    project: p\n    token: env:OPENAI_ADMIN_KEY\n    endpoint: http://admin-proxy.example/v1\n';
    expect((await endpointError(inventory(dotenv, admin))).field).toBe('key.admin.endpoint');
    const perEnv = `version: 1\nenvironments:\n  p:\n    key:\n      endpoint: http://proxy.example/v1\n    targets:\n      - ${dotenv}\n`;
    expect((await endpointError(perEnv)).field).toBe('environments.p.key.endpoint');
  });

  it('Google host:port endpoints: bare host:port is https; an explicit http:// only to loopback', async () => {
    const gcp = (ep: string) => inventory(`type: gcp-secret-manager\n        project: my-project\n        secret: s\n        endpoint: ${ep}`);
    expect((await endpointError(gcp('http://secretmanager.example.com:80'))).message).toMatch(/plain http:\/\//);
    for (const ok of ['secretmanager.googleapis.com:443', 'private.example.com:443', '127.0.0.1:8085', 'http://127.0.0.1:8085']) {
      await expect(parseInventory(gcp(ok), FILE), ok).resolves.toBeDefined();
    }
  });

  it('Docker: tcp:// is plain HTTP, so only to loopback; unix sockets are fine', async () => {
    const docker = (ep: string) => inventory(`type: docker-secret\n        secret: k\n        services: [api]\n        endpoint: ${ep}`);
    expect((await endpointError(docker('tcp://swarm-manager.example:2375'))).message).toMatch(/plain HTTP and would carry the key in clear/);
    for (const ok of ['unix:///var/run/docker.sock', 'tcp://127.0.0.1:2375', 'tcp://localhost:2375']) await expect(parseInventory(docker(ok), FILE), ok).resolves.toBeDefined();
  });

  it('https to any host, and http to loopback, are accepted', async () => {
    for (const ep of ['https://api.heroku.com', 'https://heroku-proxy.example:8443/x', 'http://127.0.0.1:4010', 'http://localhost:4010', 'http://[::1]:4010']) {
      await expect(parseInventory(inventory(`type: heroku\n        app: api\n        endpoint: ${ep}`), FILE), ep).resolves.toBeDefined();
    }
  });

  it('credentials in an endpoint URL are refused (they belong in token:)', async () => {
    const e = await endpointError(inventory('type: heroku\n        app: api\n        endpoint: https://user:pw@api.heroku.com'));
    expect(e.message).toMatch(/credentials do not belong in the URL/);
    expect(e.format()).not.toContain('pw@');
  });
});

describe('endpoints from the environment', () => {
  const inv = (target: string, extra = '') => parseInventory(inventory(target, extra), FILE);

  it('OPENAI_BASE_URL is checked when the live check uses it (no key.endpoint)', async () => {
    const openai = await inv('type: dotenv\n        path: .env');
    expect(environmentEndpointProblems(openai, { OPENAI_BASE_URL: 'http://llm-gateway.example/v1' })[0]).toMatch(/^OPENAI_BASE_URL: "http:\/\/llm-gateway\.example\/v1": plain http/);
    expect(environmentEndpointProblems(openai, { OPENAI_BASE_URL: 'http://127.0.0.1:9999/v1' })).toEqual([]);
    const pinned = await inv('type: dotenv\n        path: .env', 'key:\n  endpoint: https://api.openai.com/v1\n');
    expect(environmentEndpointProblems(pinned, { OPENAI_BASE_URL: 'http://llm-gateway.example/v1' })).toEqual([]);
  });

  it('DOCKER_HOST and AWS_ENDPOINT_URL are checked for the target types that read them', async () => {
    const docker = await inv('type: docker-secret\n        secret: k\n        services: [api]');
    expect(environmentEndpointProblems(docker, { DOCKER_HOST: 'tcp://10.1.2.3:2375' })[0]).toMatch(/^DOCKER_HOST: /);
    const aws = await inv('type: aws-secrets-manager\n        secret: s\n        region: us-east-1');
    expect(environmentEndpointProblems(aws, { AWS_ENDPOINT_URL: 'http://localstack:4566' })[0]).toMatch(/^AWS_ENDPOINT_URL: /);
    // An unrelated variable of a type the inventory does not use is not keyrot's business.
    expect(environmentEndpointProblems(aws, { DOCKER_HOST: 'tcp://10.1.2.3:2375', OPENAI_BASE_URL: 'https://x.example' })).toEqual([]);
  });

  it('the webhook URL from env:VAR: refused over http, named by host only (its path is its secret)', async () => {
    const withWebhook = await inv('type: dotenv\n        path: .env', 'notify:\n  webhook: env:HOOK\n');
    const [problem] = environmentEndpointProblems(withWebhook, { HOOK: 'http://hooks.example.com/services/T0/B0/secretpart' });
    expect(problem).toMatch(/^HOOK: the URL \(host hooks\.example\.com\): plain http/);
    expect(problem).not.toContain('secretpart');
  });

  it("the usage watch's webhook from env:VAR is checked the same way (once per variable)", async () => {
    const watched = await inv('type: dotenv\n        path: .env', 'notify:\n  webhook: env:HOOK\nwatch:\n  webhook: env:HOOK\n');
    expect(environmentEndpointProblems(watched, { HOOK: 'http://hooks.example.com/secretpart' })).toHaveLength(1);
    const own = await inv('type: dotenv\n        path: .env', 'watch:\n  webhook: env:WATCH_HOOK\n');
    const [problem] = environmentEndpointProblems(own, { WATCH_HOOK: 'http://hooks.example.com/secretpart' });
    expect(problem).toMatch(/^WATCH_HOOK: the URL \(host hooks\.example\.com\): plain http/);
    expect(environmentEndpointProblems(own, { WATCH_HOOK: 'http://127.0.0.1:8080/hook' })).toEqual([]);
    // A credential like the others: withheld from every child process keyrot starts.
    expect(credentialVariables(own, [])).toContain('WATCH_HOOK');
  });
});
