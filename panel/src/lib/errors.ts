// Errors of the API as the panel treats them: a GraphQL error's `extensions.code` decides.
import type { Translate } from './i18n/core';

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

/**
 * What to tell the agent about a failure, in their language. Codes the panel knows get a
 * text of their own; a refusal with a reason only the server can name (a conflict, a
 * malformed input) shows that reason after a translated lead-in.
 */
export function explain(caught: unknown, t: Translate): string {
  if (!(caught instanceof ApiError)) return t('error.unexpected', { message: String(caught) });
  switch (caught.code) {
    case 'NETWORK':
      return t('error.network');
    case 'RATE_LIMITED': {
      const seconds = caught.retryAfter;
      return seconds === undefined ? t('error.rateLimitedSoon') : t('error.rateLimited', { count: seconds });
    }
    case 'UNAVAILABLE':
    case 'CONTENDED':
    case 'TIMEOUT':
      return t('error.busy');
    case 'FORBIDDEN':
      return t('error.forbidden');
    case 'NOT_FOUND':
      return t('error.notFound');
    case 'UNAUTHENTICATED':
      return t('error.unauthenticated');
    case 'INTERNAL':
      return t('error.internal');
    default:
      return t('error.refused', { message: caught.message });
  }
}
