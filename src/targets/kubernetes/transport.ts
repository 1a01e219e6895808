import { createRequire } from 'node:module';
import type * as K8s from '@kubernetes/client-node';

type K8sModule = typeof import('@kubernetes/client-node');
type UndiciFetch = (url: string, init: Record<string, unknown>) => Promise<Response>;

/**
 * client-node's HTTP library with redirects refused. Its own (dist/gen/http/isomorphic-fetch.js)
 * calls undici's fetch with the default `redirect: 'follow'`: a 307/308 would re-send a PATCH body
 * (the base64 key) and the kubeconfig's credentials to whatever the Location names. This is the
 * same call with `redirect: 'manual'`: the 3xx comes back as the answer, the generated client
 * throws it as an ApiException with its headers, and k8sError names the Location.
 *
 * The fetch is client-node's own undici (resolved from client-node's folder): the per-call
 * dispatcher, which carries the cluster's CA and client certificate, is an object of that undici.
 */
export function manualRedirectLibrary(k8s: K8sModule): K8s.HttpLibrary {
  const fromClientNode = createRequire(import.meta.resolve('@kubernetes/client-node'));
  const { fetch } = fromClientNode('undici') as { fetch: UndiciFetch };
  return k8s.wrapHttpLibrary({
    async send(request) {
      const res = await fetch(request.getUrl(), {
        method: request.getHttpMethod().toString(),
        body: request.getBody(),
        headers: request.getHeaders(),
        signal: request.getSignal(),
        dispatcher: request.getDispatcher(),
        redirect: 'manual',
      });
      const headers: Record<string, string> = {};
      res.headers.forEach((value, name) => {
        headers[name] = value;
      });
      return new k8s.ResponseContext(res.status, headers, {
        text: () => res.text(),
        binary: async () => Buffer.from(await res.arrayBuffer()),
        stream: () => res.body,
      });
    },
  });
}
