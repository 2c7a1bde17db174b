// The stored sign-in, and when to refresh it: pure functions, unit-tested.

export interface Tokens {
  accessToken: string;
  accessTokenExpiresAt: string;
  refreshToken: string;
  refreshTokenExpiresAt: string;
  agentId: string;
  mustChangePassword: boolean;
  mustEnrolSecondFactor: boolean;
}

export const SESSION_KEY = 'ledgerdesk.session';

/** Reads a stored session; anything malformed reads as none. */
export function parseTokens(raw: string | null): Tokens | null {
  if (!raw) return null;
  try {
    const value = JSON.parse(raw) as Partial<Tokens>;
    if (
      typeof value.accessToken === 'string' &&
      typeof value.refreshToken === 'string' &&
      typeof value.accessTokenExpiresAt === 'string' &&
      typeof value.refreshTokenExpiresAt === 'string' &&
      typeof value.agentId === 'string'
    ) {
      return {
        accessToken: value.accessToken,
        accessTokenExpiresAt: value.accessTokenExpiresAt,
        refreshToken: value.refreshToken,
        refreshTokenExpiresAt: value.refreshTokenExpiresAt,
        agentId: value.agentId,
        mustChangePassword: value.mustChangePassword === true,
        mustEnrolSecondFactor: value.mustEnrolSecondFactor === true,
      };
    }
  } catch {
    // fall through: not ours
  }
  return null;
}

/**
 * Milliseconds from `now` until the access token should be refreshed: a fifth of its life
 * before it expires (at least 5 s before, for short test lifetimes), never negative.
 */
export function refreshDelay(issuedAt: number, expiresAt: number, now: number): number {
  const life = Math.max(0, expiresAt - issuedAt);
  const margin = Math.max(5_000, life / 5);
  return Math.max(0, expiresAt - margin - now);
}

/** Whether the access token is too close to its end to send. */
export function needsRefresh(expiresAt: number, now: number): boolean {
  return expiresAt - now < 3_000;
}
