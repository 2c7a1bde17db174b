// The panel's `t` over the core texts in one locale, without the reactive store: for the
// unit tests of pure functions that take a `t`.
import { en, ru, type CoreKey, type Translate } from './core';
import { fill, type Locale } from './translate';

export function translator(locale: Locale): Translate {
  const texts = locale === 'ru' ? ru : en;
  return (key: CoreKey, params) => fill(texts[key], locale, key, params);
}
