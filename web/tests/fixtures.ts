// What every browser test shares: its own users, the API and stub URLs, a sign-in through the
// sign-in page, and the checks every page passes: no console error, no failed request, no request
// to any origin but the app's, the API's, the audio bucket's and Stripe's pages.
import { test as base, expect, type Page } from "@playwright/test";
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const WEB_URL = process.env.WEB_URL ?? "http://localhost:3000";
export const API_URL = process.env.API_URL ?? "http://127.0.0.1:8000";
export const STRIPE_URL = process.env.STRIPE_URL ?? "http://127.0.0.1:12111";
/** The local Ollama stub (its `/_control` sets how the model answers). */
export const OLLAMA_URL = process.env.OLLAMA_URL ?? "http://127.0.0.1:12113";
const S3_URL = process.env.AWS_ENDPOINT_URL_S3 ?? "";
const ALLOWED = [WEB_URL, API_URL, STRIPE_URL, S3_URL].filter(Boolean).map((url) => new URL(url).origin);

const here = dirname(fileURLToPath(import.meta.url));
export const SCREENSHOTS = join(here, "..", "..", "target", "screenshots");

/** A user id no other test uses. */
export function newUser(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
}

/** Tokens minted so far, by user (each outlives a run). */
const tokens = new Map<string, string>();

/** A bearer token for `user`, as `make token` mints it (to prepare state through the API). */
export function tokenFor(user: string, admin = false): string {
  const key = `${user}${admin ? "/admin" : ""}`;
  let token = tokens.get(key);
  if (!token) {
    const args = ["token", "--user", user, ...(admin ? ["--admin"] : [])];
    token = execFileSync(process.env.LOCAL_API_BIN ?? "../target/debug/local-api", args, { encoding: "utf8" }).trim();
    tokens.set(key, token);
  }
  return token;
}

/** Calls the API directly as `user` (setting a test up, or checking what it now holds). */
export async function api(
  user: string,
  method: string,
  path: string,
  body?: unknown,
  admin = false,
): Promise<{ status: number; json: any }> {
  const response = await fetch(`${API_URL}${path}`, {
    method,
    headers: { Authorization: `Bearer ${tokenFor(user, admin)}`, "Content-Type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, json: text ? JSON.parse(text) : null };
}

/** Signs in through the app: its Sign in button, the sign-in page, back to where it was. */
export async function signIn(page: Page, user: string, path = "/"): Promise<void> {
  await page.goto(path);
  await page.getByRole("banner").getByRole("button", { name: "Sign in" }).click();
  await page.getByLabel("User id").fill(user);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByText(`Signed in as ${user}`)).toBeVisible();
}

/** Serious and critical accessibility violations (axe) on the page as it is now. */
export async function accessibilityViolations(page: Page): Promise<string[]> {
  const axe = createRequire(import.meta.url).resolve("axe-core/axe.min.js");
  await page.addScriptTag({ path: axe });
  return page.evaluate(async () => {
    // @ts-expect-error axe is the script just added
    const result = await window.axe.run(document, { resultTypes: ["violations"] });
    return result.violations
      .filter((v: { impact: string }) => v.impact === "serious" || v.impact === "critical")
      .map((v: { id: string; help: string; nodes: unknown[] }) => `${v.id}: ${v.help} (${v.nodes.length})`);
  });
}

/** Screenshots of the page at a phone's and a laptop's width, into target/screenshots. */
export async function screenshots(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  for (const width of [375, 1280]) {
    await page.setViewportSize({ width, height: 900 });
    await page.screenshot({ path: join(SCREENSHOTS, `${name}-${width}.png`), fullPage: true });
  }
}

/**
 * The controls the page offers that Tab does not reach, going once through the page from its start
 * (a page that loads more as it scrolls may add controls on the way; those are not required).
 */
export async function unreachableByKeyboard(page: Page): Promise<string[]> {
  const count = await page.evaluate(() => {
    const all = document.querySelectorAll<HTMLElement>("a[href], button, input, select, textarea, audio[controls]");
    const shown = Array.from(all).filter((el) => !(el as HTMLButtonElement).disabled && el.offsetParent !== null);
    shown.forEach((el, i) => (el.dataset.kbd = String(i)));
    // Sequential focus navigation starts at the top of the page.
    const start = document.createElement("div");
    start.tabIndex = -1;
    start.id = "kbd-start";
    document.body.prepend(start);
    start.focus();
    return shown.length;
  });
  const reached = new Set<number>();
  for (let i = 0; i < count * 3 + 10; i++) {
    await page.keyboard.press("Tab");
    const at = await page.evaluate(() => {
      const el = document.activeElement as HTMLElement | null;
      return { kbd: el?.dataset.kbd ?? null, inPage: el !== null && el !== document.body };
    });
    if (!at.inPage && reached.size > 0) break; // past the last control: once through
    if (at.kbd !== null) reached.add(Number(at.kbd));
  }
  return page.evaluate((seen) => {
    document.getElementById("kbd-start")?.remove();
    return Array.from(document.querySelectorAll<HTMLElement>("[data-kbd]"))
      .filter((el) => !(el as HTMLButtonElement).disabled && el.offsetParent !== null)
      .filter((el) => !seen.includes(Number(el.dataset.kbd)))
      .map((el) => `${el.tagName.toLowerCase()} "${(el.getAttribute("aria-label") ?? el.textContent ?? "").trim()}"`);
  }, [...reached]);
}

interface Watch {
  /** Console errors a test provokes on purpose (a 503 it asked a stub for). */
  allow: RegExp[];
  consoleErrors: string[];
  failedRequests: string[];
  foreignRequests: string[];
}

/** Each test: its page watched for console errors, failed requests and requests to other origins. */
export const test = base.extend<{ watch: Watch }>({
  watch: [
    async ({ page }, use) => {
      const watch: Watch = { allow: [], consoleErrors: [], failedRequests: [], foreignRequests: [] };
      page.on("console", (message) => {
        if (message.type() !== "error") return;
        // Chromium logs every 4xx answer; a refusal the API explained (a 429's paywall, a 412's
        // conflict) is the product working, and the tests assert what the page made of it.
        const answered4xx = /status of 4\d\d/.test(message.text()) && message.location().url.startsWith(API_URL);
        if (!answered4xx) watch.consoleErrors.push(`${message.text()} (${message.location().url})`);
      });
      page.on("pageerror", (error) => watch.consoleErrors.push(String(error)));
      page.on("requestfailed", (request) => {
        // A navigation away (to Stripe's page) aborts what the page was still loading.
        if (request.failure()?.errorText !== "net::ERR_ABORTED") {
          watch.failedRequests.push(`${request.method()} ${request.url()}: ${request.failure()?.errorText}`);
        }
      });
      page.on("request", (request) => {
        const url = new URL(request.url());
        if (url.protocol.startsWith("http") && !ALLOWED.includes(url.origin)) watch.foreignRequests.push(request.url());
      });
      await use(watch);
      const unexpected = watch.consoleErrors.filter((error) => !watch.allow.some((allowed) => allowed.test(error)));
      expect(unexpected, "console errors").toEqual([]);
      expect(watch.failedRequests, "failed requests").toEqual([]);
      expect(watch.foreignRequests, "requests to other origins").toEqual([]);
    },
    { auto: true },
  ],
});

export { expect };

/** Records `count` generations for `user` through the API (its usage, as a test needs it). */
export async function recordGenerations(user: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const answer = await api(user, "POST", "/api/tiers/record-generation", { generation_id: newUser("gen") });
    expect(answer.status, JSON.stringify(answer.json)).toBe(201);
  }
}

/** `user` on `tier`, granted by an admin (the user made first, as their first request would). */
export async function grantTier(user: string, tier: "FREE" | "CREATOR" | "PRO" | "STUDIO"): Promise<void> {
  expect((await api(user, "GET", "/api/tiers/limits/me")).status).toBe(200);
  const answer = await api("admin_for_tests", "PUT", `/api/admin/users/${user}/tier`, { tier }, true);
  expect(answer.status, JSON.stringify(answer.json)).toBe(200);
}

/** An admin's promotional credit block of `generations` for `user`, a year long. */
export async function grantCredits(user: string, generations: number): Promise<void> {
  expect((await api(user, "GET", "/api/tiers/limits/me")).status).toBe(200);
  const expires_at = new Date(Date.now() + 365 * 24 * 3600 * 1000).toISOString();
  const body = { generations, expires_at, reason: "browser test" };
  const answer = await api("admin_for_tests", "POST", `/api/admin/users/${user}/credits`, body, true);
  expect(answer.status, JSON.stringify(answer.json)).toBe(201);
}

/** A time as the app shows it to a viewer in `timeZone` (en-US). */
export function shownAt(iso: string | number, timeZone: string): string {
  return new Intl.DateTimeFormat("en-US", { dateStyle: "medium", timeStyle: "short", timeZone }).format(new Date(iso));
}

/**
 * `count` items listed in the pool under `genre` (titled `<genre> #<n>`), shared by a CREATOR who made
 * each through a real generation job; their contribution ids, in the order made.
 */
export async function listedItems(genre: string, count: number): Promise<string[]> {
  const sharer = newUser("sharer");
  await grantTier(sharer, "CREATOR");
  const ids = Array.from({ length: count }, (_, n) => ({ id: newUser("job"), title: `${genre} #${n + 1}` }));
  for (const job of ids) {
    const body = { generation_id: job.id, prompt: `a ${genre} song`, genre, title: job.title, quality: "standard", duration_seconds: 5 };
    const submitted = await api(sharer, "POST", "/api/generations", body);
    expect(submitted.status, JSON.stringify(submitted.json)).toBe(202);
  }
  const contributions: string[] = [];
  for (const job of ids) {
    await expect
      .poll(async () => (await api(sharer, "GET", `/api/generations/${job.id}`)).json.status, { timeout: 60_000 })
      .toBe("succeeded");
    const shared = await api(sharer, "POST", "/api/community/contribute", { generation_id: job.id });
    expect(shared.status, JSON.stringify(shared.json)).toBe(201);
    contributions.push(shared.json.contribution_id);
  }
  return contributions;
}
