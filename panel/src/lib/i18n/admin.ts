// The words of the admin screens (English and Russian; `ru` must name every key of `en`).
import type { Messages } from './types';

export const en = {
  'admin.title': 'Admin',
} satisfies Messages;

export const ru: Record<keyof typeof en, Messages[string]> = {
  'admin.title': 'Управление',
};
