// One GraphQL request over `POST /graphql`, and nothing else: no retries, no tokens of its
// own. `api.ts` adds the session; sign-in uses this directly.
import { print } from '@0no-co/graphql.web';
import type { TadaDocumentNode } from './graphql';
import { ApiError, type GraphQLErrorShape } from './errors';

const printed = new WeakMap<object, string>();

/** The document's text, printed once. */
export function text(document: TadaDocumentNode<unknown, never> | object): string {
  let query = printed.get(document);
  if (query === undefined) {
    query = print(document as Parameters<typeof print>[0]);
    printed.set(document, query);
  }
  return query;
}

export async function execute<Result, Variables>(
  document: TadaDocumentNode<Result, Variables>,
  variables: Variables,
  token?: string | null,
): Promise<Result> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  let response: Response;
  try {
    response = await fetch('/graphql', {
      method: 'POST',
      headers,
      credentials: 'same-origin',
      body: JSON.stringify({ query: text(document), variables }),
    });
  } catch (error) {
    throw new ApiError(`the server cannot be reached (${String(error)})`, 'NETWORK');
  }
  let body: { data?: Result | null; errors?: GraphQLErrorShape[] };
  try {
    body = (await response.json()) as typeof body;
  } catch {
    throw new ApiError(`the server answered ${response.status} without a GraphQL body`, 'NETWORK');
  }
  if (body.errors?.length) throw ApiError.from(body.errors);
  if (body.data == null) throw new ApiError('the server answered no data', 'INTERNAL');
  return body.data;
}
