// The signed-in agent: tokens kept in local storage (shared by the tabs of this browser),
// refreshed silently before the access token ends, and one refresh at a time across tabs
// (a refresh token works once; a second use would end the whole sign-in).
import { graphql, type ResultOf } from './graphql';
import { execute } from './transport';
import { ApiError } from './errors';
import { SESSION_KEY, needsRefresh, parseTokens, refreshDelay, type Tokens } from './tokens';

const SESSION_FIELDS = graphql(`
  fragment SessionFields on AuthPayload @_unmask {
    accessToken accessTokenExpiresAt refreshToken refreshTokenExpiresAt
    agentId mustChangePassword mustEnrolSecondFactor
  }
`);

const LOGIN = graphql(
  `mutation Login($input: LoginInput!) { login(input: $input) { ...SessionFields } }`,
  [SESSION_FIELDS],
);
const LOGIN_SECOND_FACTOR = graphql(
  `mutation LoginSecondFactor($input: LoginSecondFactorInput!) {
    loginSecondFactor(input: $input) { ...SessionFields }
  }`,
  [SESSION_FIELDS],
);
const REFRESH = graphql(
  `mutation Refresh($input: RefreshTokenInput!) { refreshToken(input: $input) { ...SessionFields } }`,
  [SESSION_FIELDS],
);
const CHANGE_PASSWORD = graphql(
  `mutation ChangePassword($input: ChangePasswordInput!) {
    changePassword(input: $input) { ...SessionFields }
  }`,
  [SESSION_FIELDS],
);
const ENROL = graphql(`
  mutation EnrolSecondFactor($input: EnrolSecondFactorInput!) {
    enrolSecondFactor(input: $input) { secret otpauthUri }
  }
`);
const CONFIRM = graphql(
  `mutation ConfirmSecondFactor($input: ConfirmSecondFactorInput!) {
    confirmSecondFactor(input: $input) { recoveryCodes session { ...SessionFields } }
  }`,
  [SESSION_FIELDS],
);
const LOGOUT = graphql(`mutation Logout($input: LogoutInput!) { logout(input: $input) { ok } }`);
const ME = graphql(`
  query Me {
    me { agentId name email role categoryIds mustChangePassword mustEnrolSecondFactor secondFactorEnrolled }
  }
`);

export type Me = ResultOf<typeof ME>['me'];

/** What `signIn` answers: done, or a second factor is asked for. */
/** Why a session ended without the agent asking (keys of the texts the sign-in page shows). */
export type EndedReason = 'session.ended' | 'session.endedDrafts';

export type SignInOutcome = { done: true } | { done: false; challenge: string };

class Session {
  tokens = $state<Tokens | null>(null);
  me = $state<Me | null>(null);
  /** Why the agent is back at the sign-in page (a text key), when a session ended by itself. */
  endedReason = $state<EndedReason | null>(null);
  private refreshing: Promise<boolean> | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor() {
    if (typeof localStorage === 'undefined') return;
    this.tokens = parseTokens(localStorage.getItem(SESSION_KEY));
    this.schedule(Date.now());
    // Another tab signed in, refreshed or signed out.
    window.addEventListener('storage', (event) => {
      if (event.key !== SESSION_KEY) return;
      const tokens = parseTokens(event.newValue);
      this.tokens = tokens;
      if (!tokens) this.me = null;
      this.schedule(Date.now());
    });
  }

  get signedIn(): boolean {
    return this.tokens !== null;
  }

  get role(): string | null {
    return this.me?.role ?? null;
  }

  /** Admins and agents work tickets; auditors read. */
  get canWrite(): boolean {
    return this.role === 'ADMIN' || this.role === 'AGENT';
  }

  private store(tokens: Tokens | null): void {
    this.tokens = tokens;
    if (tokens) localStorage.setItem(SESSION_KEY, JSON.stringify(tokens));
    else localStorage.removeItem(SESSION_KEY);
    this.schedule(Date.now());
  }

  private schedule(issuedAt: number): void {
    clearTimeout(this.timer);
    const tokens = this.tokens;
    if (!tokens) return;
    const delay = refreshDelay(issuedAt, Date.parse(tokens.accessTokenExpiresAt), Date.now());
    this.timer = setTimeout(() => void this.refresh().catch(() => this.schedule(Date.now())), delay);
  }

  async signIn(email: string, password: string): Promise<SignInOutcome> {
    try {
      const { login } = await execute(LOGIN, { input: { email, password } });
      await this.begin(login);
      return { done: true };
    } catch (error) {
      if (error instanceof ApiError && error.code === 'SECOND_FACTOR_REQUIRED') {
        return { done: false, challenge: String(error.extensions.challenge ?? '') };
      }
      throw error;
    }
  }

  async signInSecondFactor(challenge: string, code: string): Promise<void> {
    const recovery = code.replace(/\s/g, '').length > 6;
    const input = recovery ? { challenge, recoveryCode: code } : { challenge, code };
    const { loginSecondFactor } = await execute(LOGIN_SECOND_FACTOR, { input });
    await this.begin(loginSecondFactor);
  }

  async changePassword(currentPassword: string, newPassword: string): Promise<void> {
    const token = await this.accessToken();
    const { changePassword } = await execute(
      CHANGE_PASSWORD,
      { input: { currentPassword, newPassword } },
      token,
    );
    await this.begin(changePassword);
  }

  /** Starts adding an authenticator app: its secret, nothing changed at sign-in yet. */
  async enrolSecondFactor(currentPassword: string): Promise<{ secret: string; otpauthUri: string }> {
    const token = await this.accessToken();
    const { enrolSecondFactor } = await execute(ENROL, { input: { currentPassword } }, token);
    return enrolSecondFactor;
  }

  /**
   * Confirms the app with a code it shows: answers the recovery codes and the new full
   * session, which `adopt` takes once the agent has kept the codes.
   */
  async confirmSecondFactor(code: string): Promise<{ recoveryCodes: string[]; session: Tokens }> {
    const token = await this.accessToken();
    const { confirmSecondFactor } = await execute(CONFIRM, { input: { code } }, token);
    return confirmSecondFactor;
  }

  /** Continues with a session issued outside sign-in (after confirming a second factor). */
  async adopt(tokens: Tokens): Promise<void> {
    await this.begin(tokens);
  }

  private async begin(tokens: Tokens): Promise<void> {
    this.endedReason = null;
    this.store(tokens);
    await this.loadMe();
  }

  /** Reads who is signed in (after sign-in, and at start with stored tokens). */
  async loadMe(): Promise<void> {
    const token = await this.accessToken();
    if (!token) return;
    const { me } = await execute(ME, {}, token);
    this.me = me;
  }

  /** A usable access token: refreshed first when it is about to end. */
  async accessToken(): Promise<string | null> {
    const tokens = this.tokens;
    if (!tokens) return null;
    if (needsRefresh(Date.parse(tokens.accessTokenExpiresAt), Date.now())) {
      if (!(await this.refresh())) return null;
    }
    return this.tokens?.accessToken ?? null;
  }

  /**
   * Trades the refresh token for a new session, one tab at a time: a tab that waited for
   * the lock takes the session another tab just got instead of spending the used token.
   * False when the session is over (the agent is back at sign-in).
   */
  refresh(): Promise<boolean> {
    const used = this.tokens?.refreshToken;
    if (!used) return Promise.resolve(false);
    const run = async (): Promise<boolean> => {
      const stored = parseTokens(localStorage.getItem(SESSION_KEY));
      if (stored && stored.refreshToken !== used) {
        this.tokens = stored;
        this.schedule(Date.now());
        return true;
      }
      try {
        const { refreshToken } = await execute(REFRESH, { input: { refreshToken: used } });
        this.store(refreshToken);
        return true;
      } catch (error) {
        if (error instanceof ApiError && !error.retryable) {
          this.end('session.endedDrafts');
          return false;
        }
        throw error;
      }
    };
    if (!this.refreshing) {
      const locked: Promise<boolean> = navigator.locks
        ? (navigator.locks.request('ledgerdesk.refresh', run) as unknown as Promise<boolean>)
        : run();
      this.refreshing = locked.finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  /** The session ended without the agent asking: back to sign-in, drafts kept. */
  end(reason: EndedReason): void {
    this.endedReason = reason;
    this.me = null;
    this.store(null);
  }

  async signOut(): Promise<void> {
    const tokens = this.tokens;
    this.me = null;
    this.store(null);
    if (tokens) {
      try {
        await execute(LOGOUT, { input: { refreshToken: tokens.refreshToken } }, tokens.accessToken);
      } catch {
        // The tokens are forgotten here either way; the server ends them when it can.
      }
    }
  }
}

export const session = new Session();
