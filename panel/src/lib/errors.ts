// Errors of the API as the panel treats them: a GraphQL error's `extensions.code` decides.

export interface GraphQLErrorShape {
  message: string;
  extensions?: { code?: string; [key: string]: unknown };
}

/** An error the API answered (or the network's), with its code. */
export class ApiError extends Error {
  readonly code: string;
  readonly extensions: Record<string, unknown>;

  constructor(message: string, code: string, extensions: Record<string, unknown> = {}) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.extensions = extensions;
  }

  static from(errors: GraphQLErrorShape[]): ApiError {
    const first = errors[0] ?? { message: 'unknown error' };
    const extensions = first.extensions ?? {};
    return new ApiError(first.message, String(extensions.code ?? 'INTERNAL'), extensions);
  }

  /** Sending the same request later may work. */
  get retryable(): boolean {
    return ['UNAVAILABLE', 'CONTENDED', 'RATE_LIMITED', 'NETWORK', 'TIMEOUT'].includes(this.code);
  }

  /** Seconds the server asked to wait, when it did. */
  get retryAfter(): number | undefined {
    const value = this.extensions.retryAfter;
    return typeof value === 'number' ? value : undefined;
  }
}
