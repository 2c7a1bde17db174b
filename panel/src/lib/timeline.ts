// A ticket's conversation as one timeline: customer messages, replies, internal notes and
// the ticket's other events (assigned, status changed…) in ticket order. Pure, unit-tested
// (the words come from the `t` passed in).
import type { CoreKey, Translate } from './i18n/core';

/** Events shown as messages or notes (or in a reply's delivery state), not as lines. */
const SHOWN_ELSEWHERE = new Set([
  'ticket.customer_message_posted',
  'ticket.customer_message_edited',
  'ticket.agent_replied',
  'ticket.note_added',
  'ticket.reply_delivered',
  'ticket.reply_delivery_failed',
  'ticket.reply_delivery_retry_requested',
]);

export interface TimelineEvent {
  cursor: string;
  version: number;
  type: string;
  recordedAt: string;
  payload: unknown;
  actor?: { kind: string; actorId: string };
}

export type Item<M, N> =
  | { kind: 'message'; seq: number; key: string; message: M }
  | { kind: 'note'; seq: number; key: string; note: N }
  | { kind: 'event'; seq: number; key: string; event: TimelineEvent };

export function timeline<M extends { seq: number; messageId: string }, N extends { seq: number; noteId: string }>(
  messages: readonly M[],
  notes: readonly N[],
  events: readonly TimelineEvent[],
): Item<M, N>[] {
  const items: Item<M, N>[] = [
    ...messages.map((message) => ({ kind: 'message' as const, seq: message.seq, key: `m-${message.messageId}`, message })),
    ...notes.map((note) => ({ kind: 'note' as const, seq: note.seq, key: `n-${note.noteId}`, note })),
    ...events
      .filter((event) => !SHOWN_ELSEWHERE.has(event.type))
      .map((event) => ({ kind: 'event' as const, seq: event.version, key: `e-${event.cursor}`, event })),
  ];
  return items.sort((a, b) => a.seq - b.seq);
}

function field(payload: unknown, name: string): unknown {
  return payload && typeof payload === 'object' ? (payload as Record<string, unknown>)[name] : undefined;
}

function words(value: unknown): string {
  return typeof value === 'string' ? value.replace(/_/g, ' ') : '';
}

/** Who caused an event, in words. */
export function describeActor(actor: TimelineEvent['actor'], agentName: (id: string) => string, t: Translate): string {
  if (!actor) return '';
  switch (actor.kind) {
    case 'AGENT':
      return agentName(actor.actorId);
    case 'CUSTOMER':
      return t('actor.customer');
    case 'BOT':
      return t('actor.bot');
    case 'INTEGRATOR':
      return t('actor.integration');
    default:
      return t('actor.system');
  }
}

/** A status or priority of an event's payload (lower case there) as the panel names it. */
function named(t: Translate, kind: 'status' | 'priority', value: unknown): string {
  if (typeof value !== 'string' || !value) return '?';
  const key = `${kind}.${value.toUpperCase()}` as CoreKey;
  const text = t(key);
  return text === key ? words(value) : text;
}

/** One line for a ticket event; `agentName` names an agent by id. */
export function describeEvent(
  event: TimelineEvent,
  agentName: (id: string) => string,
  categoryName: (id: string) => string,
  t: Translate,
): string {
  const payload = event.payload;
  switch (event.type) {
    case 'ticket.opened':
      return t('event.opened');
    case 'ticket.assigned':
      return t('event.assigned', { name: agentName(String(field(payload, 'agent') ?? '')) });
    case 'ticket.unassigned':
      return t('event.unassigned');
    case 'ticket.status_changed':
      return t('event.status', {
        from: named(t, 'status', field(payload, 'from')),
        to: named(t, 'status', field(payload, 'to')),
      });
    case 'ticket.resolved':
      return t('event.resolved');
    case 'ticket.reopened':
      return t('event.reopened');
    case 'ticket.closed':
      return t('event.closed');
    case 'ticket.priority_changed':
      return t('event.priority', { priority: named(t, 'priority', field(payload, 'priority')) });
    case 'ticket.category_changed': {
      const category = field(payload, 'category');
      return category
        ? t('event.category', { name: categoryName(String(category)) || t('event.anotherCategory') })
        : t('event.categoryRemoved');
    }
    case 'ticket.tag_added':
      return t('event.tagged', { tag: String(field(payload, 'tag') ?? '') });
    case 'ticket.tag_removed':
      return t('event.untagged', { tag: String(field(payload, 'tag') ?? '') });
    case 'ticket.rated':
      return t('event.rated', { rating: String(field(payload, 'rating') ?? '?') });
    default:
      return event.type.replace(/^ticket\./, '').replace(/_/g, ' ');
  }
}

/**
 * Messages without the later members of a Telegram album: the album shows once, on its first
 * message (which carries `album`); the others share its `mediaGroupId` and have no `album`.
 */
export function withoutAlbumFollowers<M extends { mediaGroupId?: string | null; album?: readonly unknown[] | null }>(
  messages: readonly M[],
): M[] {
  const opened = new Set(messages.filter((m) => m.mediaGroupId && m.album?.length).map((m) => m.mediaGroupId));
  return messages.filter((m) => !m.mediaGroupId || Boolean(m.album?.length) || !opened.has(m.mediaGroupId));
}

