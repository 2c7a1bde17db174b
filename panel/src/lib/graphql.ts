// The typed GraphQL entry point: `graphql(...)` documents are checked against
// `../schema.graphql` at build time (gql.tada reads the schema through `graphql-env.d.ts`,
// which `npm run types` generates), so every result and variable has its type from the schema.
import { initGraphQLTada } from 'gql.tada';
import type { introspection } from '../graphql-env';

export const graphql = initGraphQLTada<{
  introspection: introspection;
  scalars: {
    DateTime: string;
    NaiveDate: string;
    JSON: unknown;
  };
}>();

export type { FragmentOf, ResultOf, VariablesOf, TadaDocumentNode } from 'gql.tada';
export { readFragment } from 'gql.tada';
