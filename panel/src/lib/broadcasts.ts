// The broadcast screens' logic, kept pure and unit-tested: the editor's form and the
// mutation inputs made from it, reading a stored broadcast back into the form, the
// schedule's local time, the audience's summary and the progress figures.

export const AUDIENCE_KINDS = ['all', 'status', 'category', 'language', 'explicit'] as const;
export type AudienceKind = (typeof AUDIENCE_KINDS)[number];

export const TICKET_STATUSES = ['NEW', 'OPEN', 'PENDING', 'RESOLVED', 'CLOSED'] as const;
export type TicketStatus = (typeof TICKET_STATUSES)[number];

export const TEXT_FORMATS = ['PLAIN', 'HTML', 'MARKDOWN_V2'] as const;
export type TextFormat = (typeof TEXT_FORMATS)[number];

export const MEDIA_KINDS = ['PHOTO', 'VIDEO', 'DOCUMENT', 'AUDIO', 'VOICE', 'ANIMATION'] as const;
export type MediaKind = (typeof MEDIA_KINDS)[number];

export const BROADCAST_STATES = ['DRAFT', 'SCHEDULED', 'RUNNING', 'PAUSED', 'COMPLETED', 'CANCELLED'] as const;
export type BroadcastState = (typeof BROADCAST_STATES)[number];

export const RECIPIENT_STATES = ['PENDING', 'DELIVERED', 'FAILED', 'SKIPPED', 'CANCELLED'] as const;
export type RecipientState = (typeof RECIPIENT_STATES)[number];

/** The most customers an explicit audience may list (the API's bound). */
export const MAX_EXPLICIT = 10_000;

export interface ButtonDraft {
  label: string;
  kind: 'url' | 'callback';
  /** The link, or the callback data. */
  value: string;
}

/** The editor's fields, as the agent fills them. */
export interface BroadcastForm {
  audience: AudienceKind;
  status: TicketStatus;
  categoryId: string;
  language: string;
  /** Telegram user ids, separated by spaces, commas or new lines. */
  customerIds: string;
  text: string;
  format: TextFormat;
  /** Empty: no media. */
  mediaKind: MediaKind | '';
  fileId: string;
  rows: ButtonDraft[][];
  unsubscribe: boolean;
  /** A `datetime-local` value in the agent's zone; empty: not scheduled. */
  sendAt: string;
}

export function emptyForm(): BroadcastForm {
  return {
    audience: 'all',
    status: 'OPEN',
    categoryId: '',
    language: '',
    customerIds: '',
    text: '',
    format: 'PLAIN',
    mediaKind: '',
    fileId: '',
    rows: [],
    unsubscribe: true,
    sendAt: '',
  };
}

/** The ids of an explicit list: distinct, in the order written; what is not an id apart. */
export function parseCustomerIds(text: string): { ids: string[]; invalid: string[] } {
  const ids: string[] = [];
  const invalid: string[] = [];
  const seen = new Set<string>();
  for (const word of text.split(/[\s,;]+/)) {
    if (!word) continue;
    if (!/^-?\d{1,19}$/.test(word)) {
      invalid.push(word);
      continue;
    }
    if (seen.has(word)) continue;
    seen.add(word);
    ids.push(word);
  }
  return { ids, invalid };
}

/** A problem the form has before it goes to the server: a message key and its values. */
export interface Problem {
  key:
    | 'broadcasts.problem.empty'
    | 'broadcasts.problem.noCategory'
    | 'broadcasts.problem.noLanguage'
    | 'broadcasts.problem.noCustomers'
    | 'broadcasts.problem.badCustomers'
    | 'broadcasts.problem.tooManyCustomers'
    | 'broadcasts.problem.noFileId'
    | 'broadcasts.problem.buttonLabel'
    | 'broadcasts.problem.buttonValue';
  params?: Record<string, string | number>;
}

/** What is clearly missing or wrong; the server checks the rest (lengths, links, sizes). */
export function formProblems(form: BroadcastForm): Problem[] {
  const problems: Problem[] = [];
  if (!form.text.trim() && !form.mediaKind) problems.push({ key: 'broadcasts.problem.empty' });
  if (form.audience === 'category' && !form.categoryId) problems.push({ key: 'broadcasts.problem.noCategory' });
  if (form.audience === 'language' && !form.language.trim()) problems.push({ key: 'broadcasts.problem.noLanguage' });
  if (form.audience === 'explicit') {
    const { ids, invalid } = parseCustomerIds(form.customerIds);
    if (invalid.length > 0) {
      problems.push({ key: 'broadcasts.problem.badCustomers', params: { ids: invalid.slice(0, 3).join(', ') } });
    } else if (ids.length === 0) {
      problems.push({ key: 'broadcasts.problem.noCustomers' });
    } else if (ids.length > MAX_EXPLICIT) {
      problems.push({ key: 'broadcasts.problem.tooManyCustomers', params: { count: MAX_EXPLICIT } });
    }
  }
  if (form.mediaKind && !form.fileId.trim()) problems.push({ key: 'broadcasts.problem.noFileId' });
  const buttons = form.rows.flat();
  if (buttons.some((button) => !button.label.trim())) problems.push({ key: 'broadcasts.problem.buttonLabel' });
  if (buttons.some((button) => !button.value.trim())) problems.push({ key: 'broadcasts.problem.buttonValue' });
  return problems;
}

export type AudienceInput =
  | { allCustomers: true }
  | { ticketStatus: TicketStatus }
  | { categoryId: string }
  | { language: string }
  | { customerIds: string[] };

export function toAudienceInput(form: BroadcastForm): AudienceInput {
  switch (form.audience) {
    case 'status':
      return { ticketStatus: form.status };
    case 'category':
      return { categoryId: form.categoryId };
    case 'language':
      return { language: form.language.trim() };
    case 'explicit':
      return { customerIds: parseCustomerIds(form.customerIds).ids };
    default:
      return { allCustomers: true };
  }
}

export interface ContentInput {
  text: string | null;
  format: TextFormat;
  media: { kind: MediaKind; fileId: string } | null;
  buttons: { label: string; url?: string; callbackData?: string }[][];
  unsubscribeButton: boolean;
}

export function toContentInput(form: BroadcastForm): ContentInput {
  const text = form.text.trim() ? form.text : null;
  return {
    text,
    format: form.format,
    media: form.mediaKind ? { kind: form.mediaKind, fileId: form.fileId.trim() } : null,
    buttons: form.rows
      .filter((row) => row.length > 0)
      .map((row) =>
        row.map((button) =>
          button.kind === 'url'
            ? { label: button.label.trim(), url: button.value.trim() }
            : { label: button.label.trim(), callbackData: button.value.trim() },
        ),
      ),
    unsubscribeButton: form.unsubscribe,
  };
}

function record(value: unknown): Record<string, unknown> {
  return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function upper<T extends string>(value: unknown, allowed: readonly T[], fallback: T): T {
  const candidate = String(value ?? '').toUpperCase();
  return (allowed as readonly string[]).includes(candidate) ? (candidate as T) : fallback;
}

/**
 * The form of a stored broadcast: its audience and content as the domain describes them
 * (`broadcastAt`'s `audience` and `content`), and its scheduled time.
 */
export function formFromStored(audience: unknown, content: unknown, scheduledAt: string | null = null): BroadcastForm {
  const form = emptyForm();
  const segment = record(audience);
  switch (segment.type) {
    case 'by_ticket_status':
      form.audience = 'status';
      form.status = upper(segment.status, TICKET_STATUSES, 'OPEN');
      break;
    case 'by_category':
      form.audience = 'category';
      form.categoryId = String(segment.category ?? '');
      break;
    case 'by_language':
      form.audience = 'language';
      form.language = String(segment.language ?? '');
      break;
    case 'explicit':
      form.audience = 'explicit';
      form.customerIds = (Array.isArray(segment.customers) ? segment.customers : []).map(String).join('\n');
      break;
    default:
      form.audience = 'all';
  }
  const stored = record(content);
  form.text = typeof stored.text === 'string' ? stored.text : '';
  form.format = upper(stored.format, TEXT_FORMATS, 'PLAIN');
  const media = record(stored.media);
  if (typeof media.file_id === 'string') {
    form.mediaKind = upper(media.kind, MEDIA_KINDS, 'PHOTO');
    form.fileId = media.file_id;
  }
  form.rows = (Array.isArray(stored.buttons) ? stored.buttons : []).map((row: unknown) =>
    (Array.isArray(row) ? row : []).map((button: unknown): ButtonDraft => {
      const fields = record(button);
      const action = record(fields.action);
      const label = String(fields.label ?? '');
      return action.type === 'callback'
        ? { label, kind: 'callback', value: String(action.data ?? '') }
        : { label, kind: 'url', value: String(action.url ?? '') };
    }),
  );
  form.unsubscribe = stored.unsubscribe_button !== false;
  form.sendAt = scheduledAt ? isoToLocalInput(scheduledAt) : '';
  return form;
}

/** A `datetime-local` value (the agent's zone) as a UTC instant; null when empty or invalid. */
export function localInputToIso(value: string): string | null {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/.test(value)) return null;
  // Without an offset, a date-time string is read in the browser's own zone.
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

/** A UTC instant as a `datetime-local` value in the agent's zone (minutes). */
export function isoToLocalInput(iso: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  const pad = (n: number) => String(n).padStart(2, '0');
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}`
  );
}

/** The segment in a few words: a message key and the value it names (a category's id…). */
export function audienceSummary(audience: unknown): { kind: AudienceKind; value: string } {
  const segment = record(audience);
  switch (segment.type) {
    case 'by_ticket_status':
      return { kind: 'status', value: upper(segment.status, TICKET_STATUSES, 'OPEN') };
    case 'by_category':
      return { kind: 'category', value: String(segment.category ?? '') };
    case 'by_language':
      return { kind: 'language', value: String(segment.language ?? '') };
    case 'explicit':
      return { kind: 'explicit', value: String(Array.isArray(segment.customers) ? segment.customers.length : 0) };
    default:
      return { kind: 'all', value: '' };
  }
}

export interface Counters {
  state: string;
  delivered: number;
  failed: number;
  skipped: number;
  total?: number | null;
  pending?: number | null;
  ratePerSecond?: number | null;
  etaSeconds?: number | null;
}

/** Recipients with an outcome (delivered, failed or skipped). */
export function done(counters: Counters): number {
  return counters.delivered + counters.failed + counters.skipped;
}

/** How far it is, 0–100 (whole percent, rounded down so 100 means every recipient). */
export function progressPercent(counters: Counters): number {
  const total = counters.total ?? 0;
  if (total <= 0) return counters.state.toLowerCase() === 'completed' ? 100 : 0;
  return Math.min(100, Math.floor((done(counters) / total) * 100));
}

/** Seconds as `m:ss`, or `h:mm:ss` from an hour; empty when unknown. */
export function formatEta(seconds: number | null | undefined): string {
  if (seconds == null || !Number.isFinite(seconds) || seconds < 0) return '';
  const whole = Math.round(seconds);
  const hours = Math.floor(whole / 3600);
  const minutes = Math.floor((whole % 3600) / 60);
  const rest = String(whole % 60).padStart(2, '0');
  return hours > 0 ? `${hours}:${String(minutes).padStart(2, '0')}:${rest}` : `${minutes}:${rest}`;
}

/** Messages per second in the agent's locale (one decimal); empty when unknown. */
export function formatRate(rate: number | null | undefined, locale: string): string {
  if (rate == null || !Number.isFinite(rate)) return '';
  return rate.toLocaleString(locale, { maximumFractionDigits: 1, minimumFractionDigits: rate < 10 ? 1 : 0 });
}

/** Whether the state is final (nothing will change any more). */
export function finished(state: string): boolean {
  const value = state.toUpperCase();
  return value === 'COMPLETED' || value === 'CANCELLED';
}

/** What a writer may do to a broadcast in this state. */
export function actionsFor(state: string): { edit: boolean; start: boolean; pause: boolean; resume: boolean; cancel: boolean } {
  const value = state.toUpperCase();
  const draft = value === 'DRAFT' || value === 'SCHEDULED';
  return {
    edit: draft,
    start: draft,
    pause: value === 'RUNNING',
    resume: value === 'PAUSED',
    cancel: !finished(value),
  };
}

/** A file name for a broadcast's CSV report. */
export function reportFileName(broadcastId: string): string {
  return `broadcast-${broadcastId.slice(0, 8)}-recipients.csv`;
}

/**
 * Whether the list's counters may change by themselves soon: a broadcast is sending, or one
 * is due within a minute (the scheduler starts it then).
 */
export function listIsMoving(rows: { state: string; scheduledAt?: string | null }[], now: number = Date.now()): boolean {
  return rows.some((row) => {
    if (row.state === 'RUNNING') return true;
    if (row.state !== 'SCHEDULED' || !row.scheduledAt) return false;
    return Date.parse(row.scheduledAt) - now < 60_000;
  });
}
