// Presentation of values: sizes, durations, times, map links, names. Pure, unit-tested: the
// agent's locale comes in as a parameter (components pass `i18n.locale`).
import type { Locale } from './i18n/translate';
import type { CoreKey, Translate } from './i18n/core';

const SIZE_UNITS: Record<Locale, readonly string[]> = {
  en: ['B', 'KB', 'MB', 'GB', 'TB'],
  ru: ['Б', 'КБ', 'МБ', 'ГБ', 'ТБ'],
};

/** A size in bytes as people read it, in binary steps, with the locale's digits and units. */
export function formatBytes(bytes: number | null | undefined, locale: Locale): string {
  if (bytes == null || !Number.isFinite(bytes) || bytes < 0) return '';
  const units = SIZE_UNITS[locale];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 ? 0 : value < 10 ? 1 : 0;
  const number = new Intl.NumberFormat(locale, {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  }).format(value);
  return `${number} ${units[unit]}`;
}

/** A whole number in the locale's digits. */
export function formatNumber(value: number, locale: Locale): string {
  return new Intl.NumberFormat(locale).format(value);
}

export function formatDuration(seconds: number | null | undefined): string {
  if (seconds == null || seconds < 0) return '';
  const minutes = Math.floor(seconds / 60);
  const rest = Math.floor(seconds % 60);
  return `${minutes}:${String(rest).padStart(2, '0')}`;
}

/** A time as the agent reads it: the clock today, else the date (in their locale and zone). */
export function formatTime(iso: string | null | undefined, locale: Locale, now: Date = new Date()): string {
  if (!iso) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  const sameDay = date.toDateString() === now.toDateString();
  return sameDay
    ? date.toLocaleTimeString(locale, { hour: '2-digit', minute: '2-digit' })
    : date.toLocaleDateString(locale, { day: 'numeric', month: 'short' });
}

export function formatDateTime(iso: string | null | undefined, locale: Locale): string {
  if (!iso) return '';
  const date = new Date(iso);
  return Number.isNaN(date.getTime())
    ? ''
    : date.toLocaleString(locale, { dateStyle: 'medium', timeStyle: 'short' });
}

/** An OpenStreetMap link to a point (an https link the agent opens; nothing is loaded). */
export function mapLink(latitude: number, longitude: number): string {
  const lat = latitude.toFixed(6);
  const lon = longitude.toFixed(6);
  return `https://www.openstreetmap.org/?mlat=${lat}&mlon=${lon}#map=16/${lat}/${lon}`;
}

export function customerName(
  customer: { firstName: string; lastName?: string | null; username?: string | null } | null | undefined,
  t: Translate,
): string {
  if (!customer) return t('customer.unknown');
  const name = [customer.firstName, customer.lastName].filter(Boolean).join(' ').trim();
  return name || (customer.username ? `@${customer.username}` : t('customer.unnamed'));
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

/** The text key of a ticket status (NEW, OPEN…). */
export function statusKey(status: string): CoreKey {
  return `status.${status}` as CoreKey;
}

/** The text key of a ticket priority (LOW, NORMAL…). */
export function priorityKey(priority: string): CoreKey {
  return `priority.${priority}` as CoreKey;
}
