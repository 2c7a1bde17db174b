import { describe, expect, it } from 'vitest';
import { describeActor, describeEvent, timeline, withoutAlbumFollowers } from './timeline';
import { translator } from './i18n/testing';

const event = (version: number, type: string, payload: unknown = {}) => ({
  cursor: `c${version}`, version, type, recordedAt: '2026-01-01T00:00:00Z', payload,
});

describe('the conversation timeline', () => {
  it('interleaves messages, notes and events in ticket order, without the events shown as messages', () => {
    const items = timeline(
      [{ seq: 1, messageId: 'm1' }, { seq: 4, messageId: 'm2' }],
      [{ seq: 3, noteId: 'n1' }],
      [event(0, 'ticket.opened'), event(1, 'ticket.customer_message_posted'), event(2, 'ticket.assigned'),
        event(3, 'ticket.note_added'), event(4, 'ticket.agent_replied'), event(5, 'ticket.reply_delivered')],
    );
    expect(items.map((item) => item.key)).toEqual(['e-c0', 'm-m1', 'e-c2', 'n-n1', 'm-m2']);
  });

  it('describes ticket events in words', () => {
    const names = (id: string) => (id === 'a1' ? 'Ann' : '?');
    const categories = (id: string) => (id === 'k1' ? 'Billing' : '');
    const t = translator('en');
    expect(describeEvent(event(1, 'ticket.assigned', { agent: 'a1' }), names, categories, t)).toBe('Assigned to Ann');
    expect(describeEvent(event(1, 'ticket.status_changed', { from: 'open', to: 'pending' }), names, categories, t)).toBe('Status: Open → Pending');
    expect(describeEvent(event(1, 'ticket.category_changed', { category: 'k1' }), names, categories, t)).toBe('Category: Billing');
    expect(describeEvent(event(1, 'ticket.tag_added', { tag: 'vip' }), names, categories, t)).toBe('Tagged #vip');
    expect(describeEvent(event(1, 'ticket.something_new'), names, categories, t)).toBe('something new');
  });

  it('describes them in Russian for a Russian agent', () => {
    const names = (id: string) => (id === 'a1' ? 'Анна' : '?');
    const t = translator('ru');
    expect(describeEvent(event(1, 'ticket.assigned', { agent: 'a1' }), names, () => '', t)).toBe('Назначено: Анна');
    expect(describeEvent(event(1, 'ticket.status_changed', { from: 'open', to: 'resolved' }), names, () => '', t)).toBe('Статус: Открыто → Решено');
    expect(describeEvent(event(1, 'ticket.priority_changed', { priority: 'urgent' }), names, () => '', t)).toBe('Приоритет: Срочный');
    expect(describeEvent(event(1, 'ticket.category_changed', {}), names, () => '', t)).toBe('Категория снята');
    expect(describeActor({ kind: 'CUSTOMER', actorId: 'c' }, names, t)).toBe('клиент');
  });
});

describe('albums', () => {
  it('show once, on the message that opens them', () => {
    const messages = [
      { id: 1, mediaGroupId: 'g', album: [{}, {}] },
      { id: 2, mediaGroupId: 'g', album: null },
      { id: 3, mediaGroupId: null, album: null },
      { id: 4, mediaGroupId: 'h', album: null },
    ];
    expect(withoutAlbumFollowers(messages).map((m) => m.id)).toEqual([1, 3, 4]);
  });
});

