// The words of the panel's frame and of the inbox, conversation and sign-in screens.
// Every key has an English and a Russian text; the type of `ru` makes a missing one an error.
import type { Messages } from './types';

export const en = {
  'nav.inbox': 'Inbox',
  'nav.activity': 'Activity',
  'nav.broadcasts': 'Broadcasts',
  'nav.dashboard': 'Dashboard',
  'nav.admin': 'Admin',
  'language.label': 'Language',
  'common.loading': 'Loading…',
} satisfies Messages;

export const ru: Record<keyof typeof en, Messages[string]> = {
  'nav.inbox': 'Входящие',
  'nav.activity': 'События',
  'nav.broadcasts': 'Рассылки',
  'nav.dashboard': 'Сводка',
  'nav.admin': 'Управление',
  'language.label': 'Язык',
  'common.loading': 'Загрузка…',
};
