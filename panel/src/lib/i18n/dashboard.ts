// The words of the dashboard screens (English and Russian; `ru` must name every key of `en`).
import type { Messages } from './types';

export const en = {
  'dashboard.title': 'Dashboard',
} satisfies Messages;

export const ru: Record<keyof typeof en, Messages[string]> = {
  'dashboard.title': 'Сводка',
};
