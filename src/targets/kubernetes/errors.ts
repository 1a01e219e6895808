import { TargetError } from '../../core/errors.ts';
import { formatDuration } from '../../inventory/duration.ts';
import { isAbortOrTimeout } from '../../runtime/deadline.ts';
import { retryAfterFromHeaders } from '../../runtime/retry.ts';
import { redirectRefused } from '../../runtime/http.ts';
import { providerText } from '../../core/printable.ts';

/** The API call that failed, in the words the user knows it by. */
export interface Call {
  verb: string;
  /** Plural resource as RBAC names it: secrets, deployments, selfsubjectaccessreviews. */
  resource: string;
  name?: string;
  namespace: string;
  /** Human name: "secret openai-api-key", "deployment/api". */
  what: string;
}

export interface CallSite {
  target: string;
  op: string;
  /** The kubeconfig context in use (or "in-cluster"). */
  context: string;
  server: string;
  now: number;
  /** The deadline of one call, for the timeout message. */
  timeoutMs?: number;
}

/**
 * client-node 2.x throws `ApiException` with `.code` (HTTP status), `.body` (the raw response text,
 * a JSON `Status` for API errors; undefined for 401) and `.headers` (a plain object).
 * Source: kubernetes-client/javascript src/gen/apis/exception.ts and the generated response
 * processors (`throw new ApiException(code, "Unauthorized", undefined, headers)` for 401).
 * Its message embeds the body and headers, so it is never shown: only the Status fields we pick.
 */
interface ApiExceptionLike {
  code: number;
  body?: unknown;
  headers?: Record<string, string>;
}

function isApiException(err: unknown): err is ApiExceptionLike {
  return typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'number' && 'headers' in err;
}

interface StatusBody {
  message?: string;
  reason?: string;
  details?: { retryAfterSeconds?: number };
}

function statusOf(body: unknown): StatusBody {
  if (typeof body === 'string') {
    try {
      return JSON.parse(body) as StatusBody;
    } catch {
      return {};
    }
  }
  return typeof body === 'object' && body !== null ? (body as StatusBody) : {};
}

/** A Status message may quote a value ("Invalid value: ..."): drop anything that looks like encoded data. */
function sanitize(message: string): string {
  return providerText(message.replace(/[A-Za-z0-9+/=_-]{24,}/g, '[…]'));
}

const TLS_CODES = /^(DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|CERT_HAS_EXPIRED|ERR_TLS_CERT_ALTNAME_INVALID|CERT_NOT_YET_VALID)$/;
const NET_CODES = /^(ECONNRESET|ECONNREFUSED|EPIPE|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ETIMEDOUT|UND_ERR_SOCKET|UND_ERR_CONNECT_TIMEOUT|ECONNABORTED)$/;

/** Any error from a client-node call → a TargetError in product words. */
export function k8sError(err: unknown, call: Call, site: CallSite): TargetError {
  if (err instanceof TargetError) return err;
  const init = { target: site.target, op: site.op, cause: err };
  const inNs = `in namespace ${call.namespace}`;

  if (isApiException(err)) {
    const code = err.code;
    const st = statusOf(err.body);
    if (code >= 300 && code < 400) {
      // Answered, not followed (transport.ts): a 3xx names where it pointed.
      return redirectRefused(
        {
          provider: `the Kubernetes API server of context "${site.context}"`,
          status: code,
          location: err.headers?.location,
          from: site.server,
          fix: 'point the kubeconfig cluster’s server at the API server itself (kubectl config view --minify)',
        },
        init,
      );
    }
    if (code === 401) {
      return new TargetError(
        `Kubernetes rejected the credentials of kubeconfig context "${site.context}" (401 Unauthorized): the token or client certificate is invalid or expired; refresh the kubeconfig's credentials and retry`,
        { ...init, kind: 'auth', retryable: false, status: code },
      );
    }
    if (code === 403) {
      const user = /User "([^"]+)"/.exec(st.message ?? '')?.[1];
      const object = call.name ? `${call.resource}/${call.name}` : call.resource;
      return new TargetError(
        `Kubernetes denied ${call.verb} on ${object} ${inNs}${user ? ` to ${user}` : ''}: grant "${call.verb}" on ${call.resource} in a Role bound to the identity keyrot runs as (see the kubernetes target README)`,
        { ...init, kind: 'permission', retryable: false, status: code },
      );
    }
    if (code === 404) {
      return new TargetError(`Kubernetes ${call.what} not found ${inNs} (context "${site.context}")`, {
        ...init,
        kind: 'not-found',
        retryable: false,
        status: code,
      });
    }
    if (code === 409) {
      return new TargetError(`Kubernetes ${call.what} ${inNs} was changed by someone else during keyrot's ${call.verb} (409 ${st.reason ?? 'Conflict'})`, {
        ...init,
        kind: 'conflict',
        retryable: false,
        status: code,
      });
    }
    if (code === 429) {
      const headers = new Headers(Object.entries(err.headers ?? {}));
      const retryAfterMs =
        retryAfterFromHeaders(headers, site.now) ?? (st.details?.retryAfterSeconds !== undefined ? st.details.retryAfterSeconds * 1000 : undefined);
      return new TargetError(`Kubernetes API server throttled keyrot's ${call.verb} on ${call.what} (429 Too Many Requests, API Priority and Fairness)`, {
        ...init,
        kind: 'rate-limited',
        retryable: true,
        retryAfterMs,
        status: code,
      });
    }
    if (code >= 500) {
      return new TargetError(
        `Kubernetes API server of context "${site.context}" failed on ${call.verb} ${call.what} ${inNs} (${code}${st.reason ? ` ${st.reason}` : ''}): try again later`,
        { ...init, kind: 'unavailable', retryable: true, status: code },
      );
    }
    const detail = st.message ? `: ${sanitize(st.message)}` : '';
    return new TargetError(`Kubernetes refused ${call.verb} on ${call.what} ${inNs} (${code}${st.reason ? ` ${st.reason}` : ''})${detail}`, {
      ...init,
      kind: 'invalid',
      retryable: false,
      status: code,
    });
  }

  const e = err as { name?: string; message?: string; code?: string; cause?: { code?: string; name?: string } };
  const code = e?.cause?.code ?? e?.code;
  if (isAbortOrTimeout(err)) {
    const within = site.timeoutMs !== undefined ? `within ${formatDuration(site.timeoutMs)}` : 'in time';
    return new TargetError(`Kubernetes API server of context "${site.context}" did not answer ${call.verb} ${call.what} ${within}`, {
      ...init,
      kind: 'timeout',
    });
  }
  if (code && TLS_CODES.test(code)) {
    return new TargetError(
      `TLS verification of the Kubernetes API server ${site.server} (context "${site.context}") failed (${code}): check certificate-authority / certificate-authority-data in the kubeconfig`,
      { ...init, kind: 'invalid', retryable: false },
    );
  }
  if (code && NET_CODES.test(code)) {
    return new TargetError(`cannot reach the Kubernetes API server ${site.server} of context "${site.context}" (${code})`, {
      ...init,
      kind: 'unavailable',
      // A refused connection or an unknown host rarely heals within a retry budget; a reset does.
      retryable: code !== 'ECONNREFUSED' && code !== 'ENOTFOUND',
    });
  }
  return new TargetError(`Kubernetes client failed on ${call.verb} ${call.what} ${inNs}: ${sanitize(String(e?.message ?? err))}`, {
    ...init,
    kind: 'invalid',
    retryable: false,
  });
}
