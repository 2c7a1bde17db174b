// The admin screens' data: the queries and mutations of agents, categories, templates, the
// greeting and API tokens, and the little logic around them (pure, unit-tested).
import { graphql, type ResultOf } from './graphql';

export const AGENTS = graphql(`
  query AdminAgents($consistency: ConsistencyInput) {
    agents(consistency: $consistency, includeInactive: true) {
      agentId name email role active categoryIds invitedAt deactivatedAt
    }
    categories(consistency: $consistency) { categoryId name }
  }
`);
export type AdminAgent = ResultOf<typeof AGENTS>['agents'][number];

export const INVITE_AGENT = graphql(`
  mutation InviteAgent($input: InviteAgentInput!) {
    inviteAgent(input: $input) { agentId oneTimePassword position }
  }
`);
export const CHANGE_AGENT_ROLE = graphql(`
  mutation ChangeAgentRole($input: ChangeAgentRoleInput!) { changeAgentRole(input: $input) { position } }
`);
export const SET_AGENT_CATEGORIES = graphql(`
  mutation SetAgentCategories($input: SetAgentCategoriesInput!) { setAgentCategories(input: $input) { position } }
`);
export const DEACTIVATE_AGENT = graphql(`
  mutation DeactivateAgent($input: DeactivateAgentInput!) { deactivateAgent(input: $input) { position } }
`);

export const CATEGORIES = graphql(`
  query AdminCategories($consistency: ConsistencyInput) {
    categories(consistency: $consistency, includeRemoved: true) { categoryId name createdAt removedAt }
  }
`);
export type AdminCategory = ResultOf<typeof CATEGORIES>['categories'][number];
export const CREATE_CATEGORY = graphql(`
  mutation CreateCategory($input: CreateCategoryInput!) { createCategory(input: $input) { categoryId position } }
`);
export const RENAME_CATEGORY = graphql(`
  mutation RenameCategory($input: RenameCategoryInput!) { renameCategory(input: $input) { position } }
`);
export const REMOVE_CATEGORY = graphql(`
  mutation RemoveCategory($input: RemoveCategoryInput!) { removeCategory(input: $input) { position } }
`);

export const TEMPLATES = graphql(`
  query AdminTemplates($consistency: ConsistencyInput) {
    templates(consistency: $consistency) { templateId title text updatedAt }
  }
`);
export type AdminTemplate = ResultOf<typeof TEMPLATES>['templates'][number];
export const CREATE_TEMPLATE = graphql(`
  mutation CreateTemplate($input: CreateTemplateInput!) { createTemplate(input: $input) { templateId position } }
`);
export const UPDATE_TEMPLATE = graphql(`
  mutation UpdateTemplate($input: UpdateTemplateInput!) { updateTemplate(input: $input) { position } }
`);
export const REMOVE_TEMPLATE = graphql(`
  mutation RemoveTemplate($input: RemoveTemplateInput!) { removeTemplate(input: $input) { position } }
`);

export const GREETINGS = graphql(`
  query Greetings { botTexts { key language text customText builtInText maxLength } }
`);
export type BotText = ResultOf<typeof GREETINGS>['botTexts'][number];
export const SET_GREETING = graphql(`
  mutation SetGreeting($input: SetGreetingInput!) { setGreeting(input: $input) { position } }
`);
export const SET_BOT_TEXT = graphql(`
  mutation SetBotText($input: SetBotTextInput!) { setBotText(input: $input) { position } }
`);

export const API_TOKENS = graphql(`
  query ApiTokens { apiTokens { apiTokenId name scopes createdAt lastUsedAt revokedAt } }
`);
export type AdminApiToken = ResultOf<typeof API_TOKENS>['apiTokens'][number];
export const CREATE_API_TOKEN = graphql(`
  mutation CreateApiToken($input: CreateApiTokenInput!) { createApiToken(input: $input) { apiTokenId token scopes } }
`);
export const REVOKE_API_TOKEN = graphql(`
  mutation RevokeApiToken($input: RevokeApiTokenInput!) { revokeApiToken(input: $input) { revoked } }
`);

export const ROLES = ['ADMIN', 'AGENT', 'AUDITOR'] as const;
export type AdminRole = (typeof ROLES)[number];

/** The scopes an API token may have, as the server names them (managing is never one). */
export const SCOPES = [
  'tickets:read',
  'tickets:write',
  'customers:read',
  'directory:read',
  'broadcasts:read',
  'dashboard:read',
  'events:read',
] as const;
export type ScopeName = (typeof SCOPES)[number];

/** The greetings, one per language, English (the `greeting` setting) first. */
export function greetings(texts: readonly BotText[]): BotText[] {
  return texts
    .filter((text) => text.key === 'GREETING')
    .sort((a, b) => (a.language === 'en' ? -1 : b.language === 'en' ? 1 : a.language.localeCompare(b.language)));
}

/** Active agents first, then by name. */
export function sortAgents<T extends { name: string; active: boolean }>(agents: readonly T[]): T[] {
  return [...agents].sort((a, b) => Number(b.active) - Number(a.active) || a.name.localeCompare(b.name));
}

/** Categories in use first, by name; removed ones after them. */
export function sortCategories<T extends { name: string; removedAt?: string | null }>(categories: readonly T[]): T[] {
  return [...categories].sort(
    (a, b) => Number(Boolean(a.removedAt)) - Number(Boolean(b.removedAt)) || a.name.localeCompare(b.name),
  );
}

/** Whether the same set of ids (order aside). */
export function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const left = new Set(a);
  return left.size === new Set(b).size && b.every((id) => left.has(id));
}

/** The text to keep after a trim, or the reason it cannot be sent. */
export function required(value: string, max: number): { ok: true; value: string } | { ok: false; reason: 'blank' | 'long' } {
  const trimmed = value.trim();
  if (!trimmed) return { ok: false, reason: 'blank' };
  if ([...trimmed].length > max) return { ok: false, reason: 'long' };
  return { ok: true, value: trimmed };
}

/** What to show of a failed request: the server's message (validation, conflict, …). */
export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
