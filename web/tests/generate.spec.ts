import { accessibilityViolations, api, expect, newUser, recordGenerations, screenshots, shownAt, signIn, test, unreachableByKeyboard } from "./fixtures";

const ZONE = "Europe/Berlin";
test.use({ locale: "en-US", timezoneId: ZONE });

test("a generation is queued, followed and played, and counts against the day", async ({ page }) => {
  const user = newUser("gen");
  await signIn(page, user, "/generate");
  await expect(page.getByLabel("Quality").locator("option")).toHaveText(["Standard"]);
  expect(await accessibilityViolations(page)).toEqual([]);
  expect(await unreachableByKeyboard(page)).toEqual([]);

  await page.getByLabel("Prompt").fill("a calm piano piece for a rainy morning");
  await page.getByLabel("Genre").fill("ambient");
  await page.getByRole("button", { name: "Generate" }).click();
  const player = page.getByLabel("Your song");
  await expect(player).toBeVisible({ timeout: 30_000 });
  await expect(page.getByText("Your song is ready.")).toBeVisible();
  const src = await player.getAttribute("src");
  expect(src).toContain(`audio/${user}/`);
  // The browser fetched the audio itself: the stored object, not a page of the app.
  const audio = await page.request.get(src!);
  expect(audio.status()).toBe(200);
  await expect(page.getByRole("progressbar")).toHaveAttribute("aria-valuenow", "1");
  expect((await api(user, "GET", "/api/tiers/limits/me")).json.used).toBe(1);
  await screenshots(page, "generate");
});

test("a spent allowance shows the paywall with the reset and the next tier, and nothing left disables Generate", async ({ page }) => {
  const user = newUser("gen_spent");
  await recordGenerations(user, 2);
  await signIn(page, user, "/generate");
  // The page has read the limits (one left) before another tab spends the last one: this page still
  // offers it, and the API refuses.
  await expect(page.getByRole("progressbar", { name: "2 of 3 generations used per day" })).toBeVisible();
  await recordGenerations(user, 1);
  await page.getByLabel("Prompt").fill("one more song");
  await page.getByRole("button", { name: "Generate" }).click();
  const paywall = page.getByRole("alert").filter({ hasText: "You have used all your generations" });
  const limits = (await api(user, "GET", "/api/tiers/limits/me")).json;
  await expect(paywall).toContainText(`More are yours on ${shownAt(limits.reset_at, ZONE)}.`);
  await expect(paywall).toContainText("Creator gives you 50 generations a month.");
  await expect(page.getByRole("button", { name: "Generate" })).toBeDisabled();
  await paywall.getByRole("button", { name: "Upgrade to Creator" }).click();
  await expect(page).toHaveURL(/\/pricing$/);
});
