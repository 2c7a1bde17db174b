// Durations as a person reads them, in the agent's language: "45 sec", "12 min",
// "3 hr 20 min", "2 days 4 hr" (Intl's unit names, so Russian reads "3 ч 20 мин"). At most two
// units, the larger one first; pure and unit-tested.

type Unit = 'day' | 'hour' | 'minute' | 'second';

const UNITS: readonly [Unit, number][] = [
  ['day', 86_400],
  ['hour', 3_600],
  ['minute', 60],
  ['second', 1],
];

function amount(value: number, unit: Unit, locale: string): string {
  return new Intl.NumberFormat(locale, { style: 'unit', unit, unitDisplay: 'short' }).format(value);
}

/** `seconds` humanised in `locale`; empty for no value. */
export function humanDuration(seconds: number | null | undefined, locale: string): string {
  if (seconds == null || !Number.isFinite(seconds) || seconds < 0) return '';
  let rest = Math.round(seconds);
  if (rest < 60) return amount(rest, 'second', locale);
  // Seconds only matter under a minute; minutes under a day.
  rest = rest >= 86_400 ? Math.round(rest / 3_600) * 3_600 : Math.round(rest / 60) * 60;
  const parts: string[] = [];
  for (const [unit, size] of UNITS) {
    if (parts.length === 2) break;
    const whole = Math.floor(rest / size);
    if (whole > 0) {
      parts.push(amount(whole, unit, locale));
      rest -= whole * size;
    } else if (parts.length > 0) {
      // "2 hr", not "2 hr 0 min"; and never skip to a smaller unit ("1 day 5 min").
      break;
    }
  }
  return parts.join(' ');
}
