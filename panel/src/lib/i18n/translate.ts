// Picking and filling a text: pure, unit-tested (the reactive locale lives in i18n.svelte.ts).
import type { Message } from './types';

export type Locale = 'en' | 'ru';
export const LOCALES: readonly Locale[] = ['en', 'ru'];

/** The locale a browser asks for first among the ones the panel has, else English. */
export function preferredLocale(languages: readonly string[]): Locale {
  for (const language of languages) {
    const base = language.toLowerCase().split('-')[0];
    if (base === 'ru' || base === 'en') return base;
  }
  return 'en';
}

/** Fills `{name}` placeholders; a plural text is chosen by `params.count`. */
export function fill(
  message: Message | undefined,
  locale: Locale,
  key: string,
  params: Record<string, string | number> = {},
): string {
  if (message === undefined) return key;
  let text: string;
  if (typeof message === 'string') {
    text = message;
  } else {
    const count = Number(params.count ?? 0);
    const category = new Intl.PluralRules(locale).select(count);
    text = message[category] ?? message.other;
  }
  return text.replace(/\{(\w+)\}/g, (whole, name: string) =>
    name in params ? String(params[name]) : whole,
  );
}
