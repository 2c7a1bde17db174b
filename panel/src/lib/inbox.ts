// The inbox's list logic, pure and unit-tested: which filter the server is asked for, what
// the live list may apply on its own, and how a changed ticket lands in the shown list.

export type Scope = 'all' | 'mine' | 'unassigned';
export type StatusChoice = 'active' | 'all' | 'NEW' | 'OPEN' | 'PENDING' | 'RESOLVED' | 'CLOSED';
export type Status = 'NEW' | 'OPEN' | 'PENDING' | 'RESOLVED' | 'CLOSED';
export type Priority = 'LOW' | 'NORMAL' | 'HIGH' | 'URGENT';

export interface Filters {
  status: StatusChoice;
  scope: Scope;
  category: string;
  priority: '' | Priority;
  tag: string;
  search: string;
}

export const DEFAULT_FILTERS: Filters = {
  status: 'active',
  scope: 'all',
  category: '',
  priority: '',
  tag: '',
  search: '',
};

export function statuses(choice: StatusChoice): Status[] | null {
  if (choice === 'all') return null;
  if (choice === 'active') return ['NEW', 'OPEN', 'PENDING'];
  return [choice];
}

/** The `TicketFilter` of `tickets` (every field narrows). */
export function ticketFilter(filters: Filters, me: string | null) {
  const status = statuses(filters.status);
  return {
    ...(status ? { status } : {}),
    ...(filters.scope === 'mine' && me ? { assignee: me } : {}),
    ...(filters.scope === 'unassigned' ? { unassigned: true } : {}),
    ...(filters.category ? { category: filters.category } : {}),
    ...(filters.priority ? { priority: filters.priority } : {}),
    ...(filters.tag.trim() ? { tag: filters.tag.trim() } : {}),
    ...(filters.search.trim() ? { search: filters.search.trim() } : {}),
  };
}

/** The `TicketsChangedFilter` of the live list: the part of the filter the server applies. */
export function liveFilter(filters: Filters, me: string | null) {
  const status = statuses(filters.status);
  return {
    ...(status ? { status } : {}),
    ...(filters.scope === 'mine' && me ? { assignee: me } : {}),
    ...(filters.scope === 'unassigned' ? { unassigned: true } : {}),
    ...(filters.category ? { category: filters.category } : {}),
  };
}

export interface Row {
  ticketId: string;
  version: number;
  lastActivityAt: string;
  priority: string;
  tags: readonly string[];
}

/**
 * Whether a changed ticket belongs in the list as far as the client can tell: priority and
 * tag are checked here (the live list does not filter by them); words searched for are in
 * messages the client does not hold, so with a search only tickets already shown are kept.
 */
export function fitsLocally(row: Row, filters: Filters, shown: boolean): boolean {
  if (filters.priority && row.priority !== filters.priority) return false;
  if (filters.tag.trim() && !row.tags.includes(filters.tag.trim())) return false;
  if (filters.search.trim() && !shown) return false;
  return true;
}

function byActivity(a: Row, b: Row): number {
  return b.lastActivityAt.localeCompare(a.lastActivityAt) || a.ticketId.localeCompare(b.ticketId);
}

/** The list after a change: the newer row replaces an older one; a row out of the filter goes. */
export function applyChange<T extends Row>(list: readonly T[], row: T, belongs: boolean): T[] {
  const index = list.findIndex((shown) => shown.ticketId === row.ticketId);
  const current = index >= 0 ? list[index] : undefined;
  if (current && current.version > row.version) return [...list];
  const rest = list.filter((shown) => shown.ticketId !== row.ticketId);
  if (!belongs) return rest;
  return [...rest, row].sort(byActivity);
}

/** A page appended to the list, with tickets already shown (moved meanwhile) kept once. */
export function appendPage<T extends Row>(list: readonly T[], page: readonly T[]): T[] {
  let merged = [...list];
  for (const row of page) {
    const current = merged.find((shown) => shown.ticketId === row.ticketId);
    if (!current) merged.push(row);
    else if (current.version < row.version) merged = applyChange(merged, row, true);
  }
  return merged;
}
