// How the broadcast screens name states, audiences and times in the agent's language.
import { i18n, t } from './i18n.svelte';
import { directory } from './directory.svelte';
import {
  audienceSummary,
  type AudienceKind,
  type BroadcastState,
  type RecipientState,
  type TicketStatus,
} from './broadcasts';

export function stateLabel(state: string): string {
  return t(`broadcasts.state.${state.toUpperCase() as BroadcastState}`);
}

export function recipientLabel(state: RecipientState): string {
  return t(`broadcasts.recipient.${state}`);
}

export function audienceKindLabel(kind: AudienceKind): string {
  return t(`broadcasts.audience.${kind}`);
}

export function ticketStatusLabel(status: TicketStatus): string {
  return t(`broadcasts.ticketStatus.${status}`);
}

/** The segment in words, naming a category by its name. */
export function audienceText(audience: unknown): string {
  const { kind, value } = audienceSummary(audience);
  switch (kind) {
    case 'status':
      return t('broadcasts.audience.summary.status', { value: ticketStatusLabel(value as TicketStatus) });
    case 'category':
      return t('broadcasts.audience.summary.category', { value: directory.categoryName(value) || value });
    case 'language':
      return t('broadcasts.audience.summary.language', { value });
    case 'explicit':
      return t('broadcasts.audience.summary.explicit', { count: Number(value) });
    default:
      return t('broadcasts.audience.all');
  }
}

/** A date and time in the agent's locale and zone. */
export function when(iso: string | null | undefined): string {
  if (!iso) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  return date.toLocaleString(i18n.locale, { dateStyle: 'medium', timeStyle: 'short' });
}

/** A count in the agent's locale. */
export function count(value: number | null | undefined): string {
  return value == null ? '—' : value.toLocaleString(i18n.locale);
}
