// Sign-in: OAuth 2.0 authorization code with PKCE (RFC 7636) against Cognito's hosted UI in AWS, or
// the local API's stand-in at the same paths. The ID token lives in memory only (never in
// localStorage or a cookie of ours): a reload loses it and signs in again, which the hosted UI
// answers at once while its own session lasts. Only the PKCE verifier and `state` of a sign-in in
// progress sit in sessionStorage, for the length of one redirect.

export interface AuthConfig {
  /** The hosted UI's base URL (Cognito's user pool domain; locally the local API). */
  authUrl: string;
  /** The app client's id. */
  clientId: string;
  /** Where the hosted UI sends the browser back with a code (this app's `/callback`). */
  redirectUri: string;
  /** Where the hosted UI sends the browser after signing out. */
  logoutUri: string;
}

/** Who is signed in, from the ID token's claims. */
export interface User {
  id: string;
  username: string;
  email: string | null;
  admin: boolean;
}

const PENDING = "son1k.signIn";
const SIGNED_IN = "son1k.signedIn";

interface Pending {
  verifier: string;
  state: string;
  returnTo: string;
}

type Listener = () => void;

export class Session {
  private idToken: string | null = null;
  private current: User | null = null;
  private expiresAt = 0;
  private readonly listeners = new Set<Listener>();
  private readonly config: AuthConfig;
  private readonly navigate: (url: string) => void;

  constructor(config: AuthConfig, navigate: (url: string) => void = (url) => window.location.assign(url)) {
    this.config = config;
    this.navigate = navigate;
  }

  /** The ID token for a request; an expired one is dropped and the sign-in started again. */
  token(): string | null {
    if (this.idToken && !this.valid()) {
      this.expired();
      return null;
    }
    return this.idToken;
  }

  /** The signed-in user, while the token is valid (no side effect: safe to call while rendering). */
  user(): User | null {
    return this.valid() ? this.current : null;
  }

  private valid(): boolean {
    return this.idToken !== null && Date.now() < this.expiresAt;
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Whether this tab signed in before (a reload, not a first visit): then sign in again at once. */
  wasSignedIn(): boolean {
    return sessionStorage.getItem(SIGNED_IN) === "1";
  }

  /** Sends the browser to the hosted sign-in, to come back to `returnTo`. */
  async signIn(returnTo: string, prompt?: "login"): Promise<void> {
    const verifier = randomString(64);
    const pending: Pending = { verifier, state: randomString(24), returnTo };
    sessionStorage.setItem(PENDING, JSON.stringify(pending));
    const url = new URL("/oauth2/authorize", this.config.authUrl);
    url.search = new URLSearchParams({
      response_type: "code",
      client_id: this.config.clientId,
      redirect_uri: this.config.redirectUri,
      scope: "openid email profile",
      state: pending.state,
      code_challenge: await challengeOf(verifier),
      code_challenge_method: "S256",
      ...(prompt ? { prompt } : {}),
    }).toString();
    this.navigate(url.toString());
  }

  /** Finishes a sign-in on the callback page: exchanges the code; where to go next. */
  async complete(callback: URL): Promise<string> {
    const raw = sessionStorage.getItem(PENDING);
    sessionStorage.removeItem(PENDING);
    const pending = raw ? (JSON.parse(raw) as Pending) : null;
    const code = callback.searchParams.get("code");
    if (!pending || !code || callback.searchParams.get("state") !== pending.state) {
      throw new Error("This sign-in link is not the one this tab started. Sign in again.");
    }
    const response = await fetch(new URL("/oauth2/token", this.config.authUrl), {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "authorization_code",
        client_id: this.config.clientId,
        code,
        redirect_uri: this.config.redirectUri,
        code_verifier: pending.verifier,
      }),
    });
    if (!response.ok) throw new Error("The sign-in could not be completed. Sign in again.");
    const answer = (await response.json()) as { id_token: string; expires_in: number };
    this.accept(answer.id_token, answer.expires_in);
    return pending.returnTo;
  }

  /** The API refused the token: forget it and sign in again, back to where the user was. */
  expired(): void {
    if (!this.idToken) return;
    this.clear();
    void this.signIn(window.location.pathname + window.location.search);
  }

  signOut(): void {
    this.clear();
    sessionStorage.removeItem(SIGNED_IN);
    const url = new URL("/logout", this.config.authUrl);
    url.search = new URLSearchParams({
      client_id: this.config.clientId,
      logout_uri: this.config.logoutUri,
    }).toString();
    this.navigate(url.toString());
  }

  private accept(idToken: string, expiresIn: number): void {
    const claims = decodeClaims(idToken);
    this.idToken = idToken;
    this.expiresAt = Date.now() + Math.max(0, expiresIn - 30) * 1000;
    this.current = {
      id: String(claims.sub ?? ""),
      username: String(claims["cognito:username"] ?? claims.sub ?? ""),
      email: typeof claims.email === "string" ? claims.email : null,
      admin: Array.isArray(claims["cognito:groups"]) && claims["cognito:groups"].includes("admin"),
    };
    sessionStorage.setItem(SIGNED_IN, "1");
    this.listeners.forEach((listener) => listener());
  }

  private clear(): void {
    this.idToken = null;
    this.current = null;
    this.listeners.forEach((listener) => listener());
  }
}

function decodeClaims(jwt: string): Record<string, unknown> {
  const payload = jwt.split(".")[1] ?? "";
  const base64 = payload.replace(/-/g, "+").replace(/_/g, "/");
  const json = new TextDecoder().decode(Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)));
  return JSON.parse(json) as Record<string, unknown>;
}

function randomString(bytes: number): string {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

async function challengeOf(verifier: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

function base64url(bytes: Uint8Array): string {
  let text = "";
  bytes.forEach((b) => (text += String.fromCharCode(b)));
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
