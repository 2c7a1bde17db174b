import { describe, expect, it } from 'vitest';
import { worthNotifying } from './notify';

describe('notifications', () => {
  const change = (unread: number, assigneeId: string | null = null, direction = 'in') => ({
    ticketId: 't', unreadByAgents: unread, assigneeId, lastMessageDirection: direction,
  });

  it('announce a new ticket with a customer message', () => {
    expect(worthNotifying(undefined, change(1), true, 'me')).toBe('new-ticket');
    expect(worthNotifying(undefined, change(0), true, 'me')).toBeNull();
    expect(worthNotifying(undefined, change(1), false, 'me')).toBeNull();
  });

  it('announce a customer message only on a ticket assigned to the agent', () => {
    expect(worthNotifying({ unreadByAgents: 1 }, change(2, 'me'), true, 'me')).toBe('customer-message');
    expect(worthNotifying({ unreadByAgents: 1 }, change(2, 'someone'), true, 'me')).toBeNull();
    expect(worthNotifying({ unreadByAgents: 2 }, change(2, 'me'), true, 'me')).toBeNull();
    expect(worthNotifying({ unreadByAgents: 1 }, change(2, 'me', 'out'), true, 'me')).toBeNull();
  });
});
