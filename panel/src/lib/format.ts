// Presentation of values: sizes, durations, times, map links, names. Pure, unit-tested.

export function formatBytes(bytes: number | null | undefined): string {
  if (bytes == null || !Number.isFinite(bytes) || bytes < 0) return '';
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

export function formatDuration(seconds: number | null | undefined): string {
  if (seconds == null || seconds < 0) return '';
  const minutes = Math.floor(seconds / 60);
  const rest = Math.floor(seconds % 60);
  return `${minutes}:${String(rest).padStart(2, '0')}`;
}

/** A time as the agent reads it: the clock today, else the date (in their locale and zone). */
export function formatTime(iso: string | null | undefined, now: Date = new Date()): string {
  if (!iso) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  const sameDay = date.toDateString() === now.toDateString();
  return sameDay
    ? date.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })
    : date.toLocaleDateString(undefined, { day: 'numeric', month: 'short' });
}

export function formatDateTime(iso: string | null | undefined): string {
  if (!iso) return '';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? '' : date.toLocaleString();
}

/** An OpenStreetMap link to a point (an https link the agent opens; nothing is loaded). */
export function mapLink(latitude: number, longitude: number): string {
  const lat = latitude.toFixed(6);
  const lon = longitude.toFixed(6);
  return `https://www.openstreetmap.org/?mlat=${lat}&mlon=${lon}#map=16/${lat}/${lon}`;
}

export function customerName(
  customer: { firstName: string; lastName?: string | null; username?: string | null } | null | undefined,
): string {
  if (!customer) return 'Unknown customer';
  const name = [customer.firstName, customer.lastName].filter(Boolean).join(' ').trim();
  return name || (customer.username ? `@${customer.username}` : 'Unnamed customer');
}

/** Where a forwarded message came from, from Telegram's `forward_origin`. */
export function forwardOriginName(origin: unknown): string {
  if (!origin || typeof origin !== 'object') return '';
  const value = origin as Record<string, unknown>;
  for (const key of ['name', 'title', 'sender_user_name', 'author_signature']) {
    const found = value[key];
    if (typeof found === 'string' && found) return found;
  }
  const user = value.sender_user as Record<string, unknown> | undefined;
  if (user && typeof user.first_name === 'string') return user.first_name;
  const chat = (value.chat ?? value.sender_chat) as Record<string, unknown> | undefined;
  if (chat && typeof chat.title === 'string') return chat.title;
  return typeof value.type === 'string' ? value.type.replace('_', ' ') : '';
}

export const STATUS_LABELS: Record<string, string> = {
  NEW: 'New',
  OPEN: 'Open',
  PENDING: 'Pending',
  RESOLVED: 'Resolved',
  CLOSED: 'Closed',
};

export const PRIORITY_LABELS: Record<string, string> = {
  LOW: 'Low',
  NORMAL: 'Normal',
  HIGH: 'High',
  URGENT: 'Urgent',
};
