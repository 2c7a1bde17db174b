// The panel's languages: English and Russian, chosen by the browser and switchable; the
// choice is kept in local storage. `t` reads the reactive locale, so every text shown through
// it changes at once when the agent switches.
//
// Texts live in `i18n/<area>.ts`, one file per group of screens, each with `en` and `ru`.
import * as admin from './i18n/admin';
import * as broadcasts from './i18n/broadcasts';
import * as core from './i18n/core';
import * as dashboard from './i18n/dashboard';
import { fill, LOCALES, preferredLocale, type Locale } from './i18n/translate';
import type { Messages } from './i18n/types';

export type { Locale } from './i18n/translate';
export { LOCALES } from './i18n/translate';

const en = { ...core.en, ...broadcasts.en, ...dashboard.en, ...admin.en };
export type MessageKey = keyof typeof en;
const ru: Record<MessageKey, Messages[string]> = {
  ...core.ru,
  ...broadcasts.ru,
  ...dashboard.ru,
  ...admin.ru,
};
const dictionaries: Record<Locale, Record<MessageKey, Messages[string]>> = { en, ru };

const STORAGE_KEY = 'ledgerdesk.locale';

function initialLocale(): Locale {
  if (typeof window === 'undefined') return 'en';
  const stored = localStorage.getItem(STORAGE_KEY);
  if (stored && (LOCALES as readonly string[]).includes(stored)) return stored as Locale;
  return preferredLocale(navigator.languages ?? [navigator.language]);
}

class I18n {
  locale = $state<Locale>(initialLocale());

  constructor() {
    if (typeof document !== 'undefined') document.documentElement.lang = this.locale;
  }

  set(locale: Locale): void {
    this.locale = locale;
    localStorage.setItem(STORAGE_KEY, locale);
    document.documentElement.lang = locale;
  }
}

export const i18n = new I18n();

/** The text of `key` in the current locale, with `{name}` placeholders filled. */
export function t(key: MessageKey, params?: Record<string, string | number>): string {
  return fill(dictionaries[i18n.locale][key], i18n.locale, key, params);
}
