// Queries and mutations as the signed-in agent: the access token is refreshed when it is
// about to end, and once more when the server refused it; a session that cannot be renewed
// sends the agent back to sign-in.
import type { TadaDocumentNode } from './graphql';
import { ApiError } from './errors';
import { session } from './session.svelte';
import { execute } from './transport';

export async function request<Result, Variables>(
  document: TadaDocumentNode<Result, Variables>,
  variables: Variables,
): Promise<Result> {
  const token = await session.accessToken();
  if (!token) throw new ApiError('not signed in', 'UNAUTHENTICATED');
  try {
    return await execute(document, variables, token);
  } catch (error) {
    if (!(error instanceof ApiError) || error.code !== 'UNAUTHENTICATED') throw error;
    if (!(await session.refresh())) throw error;
    try {
      return await execute(document, variables, session.tokens?.accessToken);
    } catch (again) {
      if (again instanceof ApiError && again.code === 'UNAUTHENTICATED') {
        session.end('session.endedDrafts');
      }
      throw again;
    }
  }
}

/** A fresh idempotency key for one piece of work (kept across its retries). */
export function idempotencyKey(): string {
  return crypto.randomUUID();
}
