import { describe, expect, it } from 'vitest';
import {
  actionsFor,
  audienceSummary,
  emptyForm,
  formFromStored,
  formProblems,
  formatEta,
  formatRate,
  isoToLocalInput,
  listIsMoving,
  localInputToIso,
  parseCustomerIds,
  progressPercent,
  toAudienceInput,
  toContentInput,
  type BroadcastForm,
} from './broadcasts';

const form = (fields: Partial<BroadcastForm>): BroadcastForm => ({ ...emptyForm(), text: 'Hello', ...fields });

describe('the audience of the form', () => {
  it('makes exactly one field of the API’s audience, per kind', () => {
    expect(toAudienceInput(form({}))).toEqual({ allCustomers: true });
    expect(toAudienceInput(form({ audience: 'status', status: 'PENDING' }))).toEqual({ ticketStatus: 'PENDING' });
    expect(toAudienceInput(form({ audience: 'category', categoryId: 'c-1' }))).toEqual({ categoryId: 'c-1' });
    expect(toAudienceInput(form({ audience: 'language', language: ' de ' }))).toEqual({ language: 'de' });
    expect(toAudienceInput(form({ audience: 'explicit', customerIds: '7, 8\n7 9' }))).toEqual({ customerIds: ['7', '8', '9'] });
  });

  it('reads an explicit list written any way, keeping what is not an id apart', () => {
    expect(parseCustomerIds(' 1001,1002;1003\n\n1001  x12 ')).toEqual({ ids: ['1001', '1002', '1003'], invalid: ['x12'] });
    expect(parseCustomerIds('')).toEqual({ ids: [], invalid: [] });
  });
});

describe('the content of the form', () => {
  it('sends buttons as rows of links and callbacks, media by file id, and the flags', () => {
    const content = toContentInput(
      form({
        text: 'Sale!',
        format: 'HTML',
        mediaKind: 'PHOTO',
        fileId: ' AgAD ',
        rows: [
          [
            { label: ' Shop ', kind: 'url', value: 'https://shop.example' },
            { label: 'Thanks', kind: 'callback', value: 'thanks' },
          ],
          [],
        ],
        unsubscribe: false,
      }),
    );
    expect(content).toEqual({
      text: 'Sale!',
      format: 'HTML',
      media: { kind: 'PHOTO', fileId: 'AgAD' },
      buttons: [[{ label: 'Shop', url: 'https://shop.example' }, { label: 'Thanks', callbackData: 'thanks' }]],
      unsubscribeButton: false,
    });
  });

  it('sends no text when only blanks were typed, and the unsubscribe button by default', () => {
    const content = toContentInput(form({ text: '  ', mediaKind: 'VIDEO', fileId: 'f' }));
    expect(content.text).toBeNull();
    expect(content.unsubscribeButton).toBe(true);
    expect(content.buttons).toEqual([]);
  });

  it('names what is missing before the server is asked', () => {
    expect(formProblems(form({}))).toEqual([]);
    const keys = (fields: Partial<BroadcastForm>) => formProblems(form(fields)).map((problem) => problem.key);
    expect(keys({ text: '' })).toEqual(['broadcasts.problem.empty']);
    expect(keys({ audience: 'category' })).toEqual(['broadcasts.problem.noCategory']);
    expect(keys({ audience: 'language', language: ' ' })).toEqual(['broadcasts.problem.noLanguage']);
    expect(keys({ audience: 'explicit' })).toEqual(['broadcasts.problem.noCustomers']);
    expect(keys({ audience: 'explicit', customerIds: '12 abc' })).toEqual(['broadcasts.problem.badCustomers']);
    expect(keys({ mediaKind: 'PHOTO' })).toEqual(['broadcasts.problem.noFileId']);
    expect(keys({ rows: [[{ label: '', kind: 'url', value: '' }]] })).toEqual([
      'broadcasts.problem.buttonLabel',
      'broadcasts.problem.buttonValue',
    ]);
  });
});

describe('a stored broadcast read back into the form', () => {
  it('takes the domain’s audience and content as they are stored', () => {
    const content = {
      text: '<b>Hi</b>',
      format: 'html',
      media: { kind: 'document', file_id: 'BQAD' },
      buttons: [[{ label: 'Site', action: { type: 'url', url: 'https://a.example' } }], [{ label: 'Yes', action: { type: 'callback', data: 'yes' } }]],
      unsubscribe_button: false,
    };
    const read = formFromStored({ type: 'explicit', customers: [11, 12] }, content);
    expect(read.audience).toBe('explicit');
    expect(read.customerIds).toBe('11\n12');
    expect(read.text).toBe('<b>Hi</b>');
    expect(read.format).toBe('HTML');
    expect(read.mediaKind).toBe('DOCUMENT');
    expect(read.fileId).toBe('BQAD');
    expect(read.rows).toEqual([[{ label: 'Site', kind: 'url', value: 'https://a.example' }], [{ label: 'Yes', kind: 'callback', value: 'yes' }]]);
    expect(read.unsubscribe).toBe(false);
    // And back: the same inputs as those it was written with.
    expect(toContentInput(read).buttons).toEqual([[{ label: 'Site', url: 'https://a.example' }], [{ label: 'Yes', callbackData: 'yes' }]]);
  });

  it('reads each kind of segment', () => {
    expect(formFromStored({ type: 'by_ticket_status', status: 'resolved' }, {}).status).toBe('RESOLVED');
    expect(formFromStored({ type: 'by_category', category: 'uuid' }, {}).categoryId).toBe('uuid');
    expect(formFromStored({ type: 'by_language', language: 'ru' }, {}).language).toBe('ru');
    const plain = formFromStored({ type: 'all_customers' }, { text: 'x' });
    expect(plain.audience).toBe('all');
    expect(plain.format).toBe('PLAIN');
    expect(plain.unsubscribe).toBe(true);
    expect(plain.mediaKind).toBe('');
  });

  it('summarises a segment for the list', () => {
    expect(audienceSummary({ type: 'all_customers' })).toEqual({ kind: 'all', value: '' });
    expect(audienceSummary({ type: 'explicit', customers: [1, 2, 3] })).toEqual({ kind: 'explicit', value: '3' });
    expect(audienceSummary({ type: 'by_ticket_status', status: 'open' })).toEqual({ kind: 'status', value: 'OPEN' });
    expect(audienceSummary(null)).toEqual({ kind: 'all', value: '' });
  });
});

describe('the schedule', () => {
  it('turns the agent’s local time into the instant it names, and back', () => {
    const iso = localInputToIso('2027-03-04T09:30');
    expect(iso).toBe(new Date(2027, 2, 4, 9, 30).toISOString());
    expect(isoToLocalInput(iso ?? '')).toBe('2027-03-04T09:30');
  });

  it('reads the local time in the agent’s zone (Moscow: UTC+3)', () => {
    const before = process.env.TZ;
    process.env.TZ = 'Europe/Moscow';
    try {
      expect(localInputToIso('2027-03-04T09:30')).toBe('2027-03-04T06:30:00.000Z');
      expect(isoToLocalInput('2027-03-04T21:15:00Z')).toBe('2027-03-05T00:15');
    } finally {
      if (before === undefined) delete process.env.TZ;
      else process.env.TZ = before;
    }
  });

  it('refuses what is not a datetime-local value', () => {
    expect(localInputToIso('')).toBeNull();
    expect(localInputToIso('tomorrow')).toBeNull();
    expect(isoToLocalInput('nonsense')).toBe('');
  });
});

describe('the progress', () => {
  it('counts every outcome against the total, rounding down', () => {
    expect(progressPercent({ state: 'running', delivered: 1, failed: 0, skipped: 0, total: 3 })).toBe(33);
    expect(progressPercent({ state: 'running', delivered: 2, failed: 1, skipped: 0, total: 3 })).toBe(100);
    expect(progressPercent({ state: 'running', delivered: 199, failed: 0, skipped: 0, total: 200 })).toBe(99);
    expect(progressPercent({ state: 'draft', delivered: 0, failed: 0, skipped: 0, total: null })).toBe(0);
    expect(progressPercent({ state: 'completed', delivered: 0, failed: 0, skipped: 0, total: 0 })).toBe(100);
  });

  it('shows the time left as minutes and seconds, hours from an hour', () => {
    expect(formatEta(5)).toBe('0:05');
    expect(formatEta(125)).toBe('2:05');
    expect(formatEta(3 * 3600 + 61)).toBe('3:01:01');
    expect(formatEta(null)).toBe('');
    expect(formatEta(-1)).toBe('');
  });

  it('writes the rate in the agent’s locale', () => {
    expect(formatRate(2.5, 'en')).toBe('2.5');
    expect(formatRate(2.5, 'ru')).toBe('2,5');
    expect(formatRate(29.96, 'en')).toBe('30');
    expect(formatRate(null, 'en')).toBe('');
  });

  it('offers a writer what the state allows', () => {
    expect(actionsFor('DRAFT')).toEqual({ edit: true, start: true, pause: false, resume: false, cancel: true });
    expect(actionsFor('running')).toEqual({ edit: false, start: false, pause: true, resume: false, cancel: true });
    expect(actionsFor('PAUSED')).toEqual({ edit: false, start: false, pause: false, resume: true, cancel: true });
    expect(actionsFor('COMPLETED')).toEqual({ edit: false, start: false, pause: false, resume: false, cancel: false });
  });
});

describe('the list', () => {
  it('reads its counters again only while something is sending or about to start', () => {
    const now = Date.parse('2027-01-01T12:00:00Z');
    expect(listIsMoving([{ state: 'COMPLETED' }, { state: 'DRAFT' }], now)).toBe(false);
    expect(listIsMoving([{ state: 'RUNNING' }], now)).toBe(true);
    expect(listIsMoving([{ state: 'SCHEDULED', scheduledAt: '2027-01-01T12:00:30Z' }], now)).toBe(true);
    expect(listIsMoving([{ state: 'SCHEDULED', scheduledAt: '2027-01-02T12:00:00Z' }], now)).toBe(false);
  });
});
