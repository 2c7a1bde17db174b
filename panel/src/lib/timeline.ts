// A ticket's conversation as one timeline: customer messages, replies, internal notes and
// the ticket's other events (assigned, status changed…) in ticket order. Pure, unit-tested.

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
export function describeActor(actor: TimelineEvent['actor'], agentName: (id: string) => string): string {
  if (!actor) return '';
  switch (actor.kind) {
    case 'AGENT':
      return agentName(actor.actorId);
    case 'CUSTOMER':
      return 'the customer';
    case 'BOT':
      return 'the bot';
    case 'INTEGRATOR':
      return 'an integration';
    default:
      return 'Ledgerdesk';
  }
}

/** One line for a ticket event; `agentName` names an agent by id. */
export function describeEvent(event: TimelineEvent, agentName: (id: string) => string, categoryName: (id: string) => string): string {
  const payload = event.payload;
  switch (event.type) {
    case 'ticket.opened':
      return 'Ticket opened';
    case 'ticket.assigned':
      return `Assigned to ${agentName(String(field(payload, 'agent') ?? ''))}`;
    case 'ticket.unassigned':
      return 'Unassigned';
    case 'ticket.status_changed':
      return `Status: ${words(field(payload, 'from'))} → ${words(field(payload, 'to'))}`;
    case 'ticket.resolved':
      return 'Resolved';
    case 'ticket.reopened':
      return 'Reopened';
    case 'ticket.closed':
      return 'Closed';
    case 'ticket.priority_changed':
      return `Priority: ${words(field(payload, 'priority'))}`;
    case 'ticket.category_changed': {
      const category = field(payload, 'category');
      return category ? `Category: ${categoryName(String(category)) || 'another category'}` : 'Category removed';
    }
    case 'ticket.tag_added':
      return `Tagged #${String(field(payload, 'tag') ?? '')}`;
    case 'ticket.tag_removed':
      return `Tag #${String(field(payload, 'tag') ?? '')} removed`;
    case 'ticket.rated':
      return `Rated ${String(field(payload, 'rating') ?? '?')} of 5`;
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

