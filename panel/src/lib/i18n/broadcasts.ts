// The words of the broadcasts screens (English and Russian; `ru` must name every key of `en`).
import type { Messages } from './types';

export const en = {
  'broadcasts.title': 'Broadcasts',
} satisfies Messages;

export const ru: Record<keyof typeof en, Messages[string]> = {
  'broadcasts.title': 'Рассылки',
};
