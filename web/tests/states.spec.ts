import {
  accessibilityViolations,
  API_URL,
  expect,
  newUser,
  OLLAMA_URL,
  screenshots,
  signIn,
  test,
  unreachableByKeyboard,
} from "./fixtures";

const PAGES = [
  ["home", "/", "Make music with Son1kVers3"],
  ["pricing", "/pricing", "Choose your plan"],
  ["usage", "/usage", "Your usage"],
  ["generate", "/generate", "Generate a song"],
  ["pool", "/pool", "Listen to the community"],
  ["lyrics", "/lyrics", "Lyric Studio"],
  ["pixel", "/pixel", "Talk to Pixel"],
] as const;

test("every page: no serious accessibility violation, every control reachable by keyboard, screenshots", async ({ page }) => {
  for (const [name, path, heading] of PAGES.slice(0, 2)) {
    await page.goto(path);
    await expect(page.getByRole("heading", { level: 1, name: heading })).toBeVisible();
    expect(await accessibilityViolations(page), `${name}, signed out`).toEqual([]);
    expect(await unreachableByKeyboard(page), `${name}, signed out`).toEqual([]);
    await screenshots(page, `${name}-signed-out`);
  }
  await signIn(page, newUser("pages"));
  for (const [name, path, heading] of PAGES) {
    await page.getByRole("navigation", { name: "Main" }).getByRole("link").filter({ hasText: new RegExp(`^${name === "pricing" ? "Plans" : name}$`, "i") }).click();
    await expect(page).toHaveURL(new RegExp(`${path === "/" ? "/$" : path}`));
    await expect(page.getByRole("heading", { level: 1, name: heading })).toBeVisible();
    await expect(page.getByText(/Loading/)).toHaveCount(0);
    expect(await accessibilityViolations(page), name).toEqual([]);
    expect(await unreachableByKeyboard(page), name).toEqual([]);
    await screenshots(page, name);
  }
});

test("the token lives in memory only, and a reload signs in again without asking", async ({ page }) => {
  const user = newUser("memory");
  await signIn(page, user, "/usage");
  const stored = await page.evaluate(() => [
    ...Object.entries(localStorage),
    ...Object.entries(sessionStorage),
  ]);
  expect(stored.filter(([, value]) => value.includes("eyJ"))).toEqual([]);
  expect(await page.evaluate(() => localStorage.length)).toBe(0);

  const authorizations: string[] = [];
  page.on("request", (request) => request.url().startsWith(`${API_URL}/oauth2/authorize`) && authorizations.push(request.url()));
  await page.reload();
  await expect(page.getByText(`Signed in as ${user}`)).toBeVisible();
  await expect(page.getByRole("progressbar")).toBeVisible();
  expect(authorizations).toHaveLength(1);
  await expect(page).toHaveURL(/\/usage$/);
});

test("an expired token goes back through the sign-in, and the page carries on", async ({ page }) => {
  const user = newUser("expiry");
  await signIn(page, user, "/");
  const authorizations: string[] = [];
  page.on("request", (request) => request.url().startsWith(`${API_URL}/oauth2/authorize`) && authorizations.push(request.url()));
  // Two hours on: the one-hour ID token has expired in the browser's eyes.
  await page.clock.setFixedTime(Date.now() + 2 * 3600 * 1000);
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Usage" }).click();
  await expect(page).toHaveURL(/\/usage$/);
  await expect(page.getByText(`Signed in as ${user}`)).toBeVisible();
  await expect(page.getByRole("progressbar")).toBeVisible();
  expect(authorizations.length).toBeGreaterThan(0);
});

test("signing out forgets the user, and the sign-in asks again", async ({ page }) => {
  const user = newUser("leaver");
  await signIn(page, user, "/usage");
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page.getByRole("banner").getByRole("button", { name: "Sign in" })).toBeVisible();
  await page.goto("/usage");
  await page.getByRole("main").getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByLabel("User id")).toBeVisible();
});

test("a 503 is a banner that says when to retry, and the retry goes through", async ({ page, watch }) => {
  // Chromium logs the 503 this test asks for.
  watch.allow.push(new RegExp(`status of 503 .*\\(${API_URL}/api/pixel/chat\\)`));
  const user = newUser("retry");
  const marker = newUser("fail");
  const control = (behaviour: object) =>
    fetch(`${OLLAMA_URL}/_control`, { method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify(behaviour) });
  expect((await control({ mode: "fail", when_contains: marker })).status).toBe(204);
  try {
    await signIn(page, user, "/pixel");
    await page.getByLabel("Message").fill(`hello ${marker}`);
    await page.getByRole("button", { name: "Send" }).click();
    const banner = page.getByRole("alert");
    await expect(banner).toContainText("the language model did not answer in time");
    await expect(banner).toContainText("Try again in 1 second.");
    expect((await control({ mode: "normal" })).status).toBe(204);
    await banner.getByRole("button", { name: "Retry" }).click();
    await expect(page.getByRole("list", { name: "Conversation" })).toContainText(`You said "hello ${marker}"`);
    // The failed message was given back: this is the day's first.
    await expect(page.getByRole("status")).toContainText("19 of 20 messages left today");
  } finally {
    await control({ mode: "normal" });
  }
});
