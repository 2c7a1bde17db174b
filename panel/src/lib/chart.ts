// The dashboard's line chart, as numbers: where each day and each value falls, the paths of
// the lines and the ticks of both axes. Pure (no DOM, no locale), unit-tested; the component
// draws it as SVG and formats the tick labels.

/** One day of the series: a UTC date (`YYYY-MM-DD`) and a value per line (null: none). */
export interface ChartDay {
  day: string;
  values: readonly (number | null)[];
}

export interface ChartOptions {
  width: number;
  height: number;
  /** Room for the axes' labels. */
  margin: { top: number; right: number; bottom: number; left: number };
  /** The first and last day of the period (`YYYY-MM-DD`, both included). */
  from: string;
  to: string;
  /** At most this many labelled days on the time axis. */
  maxDayTicks?: number;
}

export interface ChartPoint {
  x: number;
  y: number;
  day: string;
  value: number;
}

export interface ChartLine {
  /** An SVG path: a run of days with values is one stroke; a day without breaks it. */
  path: string;
  points: ChartPoint[];
}

export interface ChartLayout {
  plot: { left: number; top: number; right: number; bottom: number };
  lines: ChartLine[];
  /** Value ticks (seconds), bottom up. */
  yTicks: { y: number; value: number }[];
  /** Day ticks, left to right. */
  xTicks: { x: number; day: string }[];
}

const DAY_MS = 86_400_000;

/** Steps for the value axis, in seconds: round durations a person reads at a glance. */
const STEPS = [
  1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1_800, 3_600, 7_200, 10_800, 21_600, 43_200, 86_400,
  172_800, 432_000, 604_800, 1_209_600, 2_592_000,
];

/** Days from the epoch of a `YYYY-MM-DD` date (UTC); NaN for anything else. */
export function dayNumber(day: string): number {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) return Number.NaN;
  return Math.round(Date.parse(`${day}T00:00:00Z`) / DAY_MS);
}

/** The `YYYY-MM-DD` of a day number. */
export function dayString(number: number): string {
  return new Date(number * DAY_MS).toISOString().slice(0, 10);
}

/** The last `days` UTC days up to `now`'s, as the dashboard's period. */
export function periodDays(days: number, now: Date = new Date()): { from: string; to: string } {
  const today = Math.floor(now.getTime() / DAY_MS);
  return { from: dayString(today - Math.max(1, days) + 1), to: dayString(today) };
}

/** The value axis: a round step giving at most `maxTicks` intervals over `max`. */
export function valueTicks(max: number, maxTicks = 5): number[] {
  if (!Number.isFinite(max) || max <= 0) return [0, 60];
  let step = STEPS.find((candidate) => max / candidate <= maxTicks);
  if (step === undefined) {
    // Longer than the table: whole multiples of its last step.
    const last = STEPS[STEPS.length - 1] ?? 1;
    step = Math.ceil(max / maxTicks / last) * last;
  }
  const top = Math.ceil(max / step) * step;
  const ticks: number[] = [];
  for (let value = 0; value <= top + step / 2; value += step) ticks.push(value);
  return ticks;
}

/** Evenly spread day ticks, always with the first and last day of the period. */
export function dayTicks(from: number, to: number, maxTicks: number): number[] {
  const span = to - from;
  if (span <= 0) return [from];
  const count = Math.max(2, Math.min(maxTicks, span + 1));
  const step = Math.ceil(span / (count - 1));
  const ticks: number[] = [];
  for (let day = from; day < to; day += step) ticks.push(day);
  // The last tick is the period's end; drop a crowded one before it.
  if (ticks.length > 1 && to - (ticks[ticks.length - 1] ?? to) < step / 2) ticks.pop();
  ticks.push(to);
  return ticks;
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}

export function chartLayout(series: readonly ChartDay[], options: ChartOptions): ChartLayout {
  const { width, height, margin } = options;
  const plot = {
    left: margin.left,
    top: margin.top,
    right: Math.max(margin.left + 1, width - margin.right),
    bottom: Math.max(margin.top + 1, height - margin.bottom),
  };
  const from = dayNumber(options.from);
  const to = Math.max(from, dayNumber(options.to));
  const days = [...series]
    .map((day) => ({ ...day, number: dayNumber(day.day) }))
    .filter((day) => Number.isFinite(day.number) && day.number >= from && day.number <= to)
    .sort((a, b) => a.number - b.number);
  const lineCount = days.reduce((most, day) => Math.max(most, day.values.length), 0);
  const max = days.reduce(
    (most, day) => day.values.reduce<number>((m, value) => (value != null && value > m ? value : m), most),
    0,
  );
  const yValues = valueTicks(max);
  const top = yValues[yValues.length - 1] ?? 1;

  // One day alone sits in the middle.
  const x = (day: number) =>
    to === from ? (plot.left + plot.right) / 2 : plot.left + ((day - from) / (to - from)) * (plot.right - plot.left);
  const y = (value: number) => plot.bottom - (value / top) * (plot.bottom - plot.top);

  const lines: ChartLine[] = [];
  for (let line = 0; line < lineCount; line += 1) {
    const points: ChartPoint[] = [];
    let path = '';
    let previous: number | null = null;
    for (const day of days) {
      const value = day.values[line];
      if (value == null || !Number.isFinite(value)) continue;
      const point = { x: round(x(day.number)), y: round(y(value)), day: day.day, value };
      // Consecutive days join; a day without a value between two points breaks the line.
      const joins = previous !== null && day.number - previous === 1;
      path += `${path ? ' ' : ''}${joins ? 'L' : 'M'}${point.x},${point.y}`;
      points.push(point);
      previous = day.number;
    }
    lines.push({ path, points });
  }

  return {
    plot,
    lines,
    yTicks: yValues.map((value) => ({ y: round(y(value)), value })),
    xTicks: dayTicks(from, to, options.maxDayTicks ?? 6).map((day) => ({ x: round(x(day)), day: dayString(day) })),
  };
}
