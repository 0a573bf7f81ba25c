import type { RepositoryPath } from "../../reference/index.js";
import type { RegistryError } from "../errors.js";
import type { CallOptions } from "../store.js";
import { unexpectedResponse } from "../transport/request-error.js";
import type {
  HttpMethod,
  HttpRequest,
  HttpResponse,
  RequestBody,
  RequestContext,
} from "../transport/types.js";
import type { RegistryEndpoint } from "./endpoint.js";

export interface RequestSpec {
  readonly method: HttpMethod;
  /** A `/v2/...` path of this registry, or an absolute URL (upload locations, Link pages). */
  readonly url: URL;
  readonly scopes: readonly string[];
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: RequestBody;
  readonly bufferLimit?: number;
  readonly idempotent?: boolean;
  readonly headersTimeoutMs?: number;
}

/**
 * One repository of one registry: builds requests with the context every error needs
 * (operation, registry, repository) and the auth scopes.
 */
export class RepositoryClient {
  constructor(
    readonly endpoint: RegistryEndpoint,
    readonly repository: RepositoryPath,
  ) {}

  /** `/v2/<name>/<rest>` */
  path(rest: string): string {
    return `/v2/${this.repository}/${rest}`;
  }

  context(operation: string): RequestContext {
    return { operation, registry: this.endpoint.host, repository: this.repository };
  }

  request(operation: string, spec: RequestSpec, options: CallOptions = {}): HttpRequest {
    return {
      method: spec.method,
      url: spec.url,
      context: this.context(operation),
      auth: {
        registry: this.endpoint.host,
        origin: this.endpoint.origin,
        repository: this.repository,
        scopes: spec.scopes,
      },
      ...(spec.headers === undefined ? {} : { headers: spec.headers }),
      ...(spec.body === undefined ? {} : { body: spec.body }),
      ...(spec.bufferLimit === undefined ? {} : { bufferLimit: spec.bufferLimit }),
      ...(spec.idempotent === undefined ? {} : { idempotent: spec.idempotent }),
      ...(spec.headersTimeoutMs === undefined ? {} : { headersTimeoutMs: spec.headersTimeoutMs }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    };
  }

  async send(
    operation: string,
    spec: RequestSpec,
    options: CallOptions = {},
  ): Promise<{ request: HttpRequest; response: HttpResponse }> {
    const request = this.request(operation, spec, options);
    const response = await this.endpoint.transport.send(request);
    return { request, response };
  }

  /** The error for a response the operation did not expect. */
  fail(response: HttpResponse, request: HttpRequest, summary?: string): Promise<RegistryError> {
    return unexpectedResponse(response, request, this.endpoint.redactor, summary);
  }
}
