import { describe, expect, it } from 'vitest';
import { chartLayout, dayNumber, dayString, dayTicks, periodDays, valueTicks } from './chart';

const options = {
  width: 600,
  height: 200,
  margin: { top: 10, right: 10, bottom: 30, left: 50 },
  from: '2026-03-01',
  to: '2026-03-07',
};

describe('days', () => {
  it('count from the epoch, in UTC, both ways', () => {
    expect(dayNumber('1970-01-02')).toBe(1);
    expect(dayString(dayNumber('2026-03-01'))).toBe('2026-03-01');
    expect(dayNumber('yesterday')).toBeNaN();
  });
  it('make a period that ends today', () => {
    expect(periodDays(7, new Date('2026-03-07T23:59:00Z'))).toEqual({ from: '2026-03-01', to: '2026-03-07' });
    expect(periodDays(1, new Date('2026-03-07T00:00:00Z'))).toEqual({ from: '2026-03-07', to: '2026-03-07' });
  });
});

describe('valueTicks', () => {
  it('picks a round step and covers the largest value', () => {
    expect(valueTicks(50)).toEqual([0, 10, 20, 30, 40, 50]);
    expect(valueTicks(70)).toEqual([0, 15, 30, 45, 60, 75]);
    expect(valueTicks(3_000)).toEqual([0, 600, 1_200, 1_800, 2_400, 3_000]);
    expect(valueTicks(3_100)).toEqual([0, 900, 1_800, 2_700, 3_600]);
    expect(valueTicks(5 * 3_600)).toEqual([0, 3_600, 7_200, 10_800, 14_400, 18_000]);
  });
  it('has an axis even without values', () => {
    expect(valueTicks(0)).toEqual([0, 60]);
  });
  it('goes on past the longest step', () => {
    const ticks = valueTicks(400 * 86_400);
    expect(ticks.length).toBeLessThanOrEqual(6);
    expect(ticks[ticks.length - 1]).toBeGreaterThanOrEqual(400 * 86_400);
  });
});

describe('dayTicks', () => {
  it('spreads at most the asked number and keeps both ends', () => {
    expect(dayTicks(0, 6, 7)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    const ticks = dayTicks(0, 89, 6);
    expect(ticks[0]).toBe(0);
    expect(ticks[ticks.length - 1]).toBe(89);
    expect(ticks.length).toBeLessThanOrEqual(6);
  });
  it('has one tick for one day', () => {
    expect(dayTicks(5, 5, 6)).toEqual([5]);
  });
});

describe('chartLayout', () => {
  it('places days across and values up, and joins consecutive days', () => {
    const layout = chartLayout(
      [
        { day: '2026-03-01', values: [60, 600] },
        { day: '2026-03-02', values: [120, null] },
        { day: '2026-03-03', values: [0, 300] },
      ],
      options,
    );
    expect(layout.plot).toEqual({ left: 50, top: 10, right: 590, bottom: 170 });
    // Top tick: 600 s → steps of 120 s up to 600.
    expect(layout.yTicks.map((tick) => tick.value)).toEqual([0, 120, 240, 360, 480, 600]);
    expect(layout.yTicks[0]).toEqual({ y: 170, value: 0 });
    expect(layout.yTicks[5]).toEqual({ y: 10, value: 600 });
    const [first, second] = layout.lines;
    expect(first?.path).toBe('M50,154 L140,138 L230,170');
    expect(first?.points.map((point) => point.day)).toEqual(['2026-03-01', '2026-03-02', '2026-03-03']);
    // The day without a resolution breaks the second line.
    expect(second?.path).toBe('M50,10 M230,90');
    expect(layout.xTicks[0]).toEqual({ x: 50, day: '2026-03-01' });
    expect(layout.xTicks[layout.xTicks.length - 1]).toEqual({ x: 590, day: '2026-03-07' });
  });
  it('leaves out days outside the period and sorts the rest', () => {
    const layout = chartLayout(
      [
        { day: '2026-03-05', values: [10] },
        { day: '2026-02-28', values: [99_999] },
        { day: '2026-03-04', values: [20] },
      ],
      options,
    );
    expect(layout.lines[0]?.points.map((point) => point.day)).toEqual(['2026-03-04', '2026-03-05']);
    expect(layout.yTicks[layout.yTicks.length - 1]?.value).toBe(20);
  });
  it('puts a one-day period in the middle and draws nothing without data', () => {
    const one = chartLayout([{ day: '2026-03-07', values: [30] }], { ...options, from: '2026-03-07' });
    expect(one.lines[0]?.points[0]?.x).toBe(320);
    const none = chartLayout([], options);
    expect(none.lines).toEqual([]);
    expect(none.yTicks.length).toBeGreaterThan(1);
  });
});
