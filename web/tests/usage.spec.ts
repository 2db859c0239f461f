import { accessibilityViolations, api, expect, grantCredits, grantTier, newUser, recordGenerations, screenshots, shownAt, signIn, STRIPE_URL, test, unreachableByKeyboard } from "./fixtures";

const ZONE = "Asia/Kolkata";
test.use({ locale: "en-US", timezoneId: ZONE });

test("a FREE user's meter counts the day, resets at the viewer's local time, and warns when spent", async ({ page }) => {
  const user = newUser("usage_free");
  await recordGenerations(user, 2);
  await signIn(page, user, "/usage");
  const meter = page.getByRole("progressbar", { name: "2 of 3 generations used per day" });
  await expect(meter).toHaveAttribute("aria-valuenow", "2");
  await expect(meter).toHaveAttribute("aria-valuemax", "3");
  const limits = (await api(user, "GET", "/api/tiers/limits/me")).json;
  await expect(page.getByText(`1 left · resets ${shownAt(limits.reset_at, ZONE)}`)).toBeVisible();
  await expect(page.getByText("Storage: 0 bytes of 1 GiB")).toBeVisible();
  await expect(page.getByRole("status")).toHaveCount(0);

  expect(await accessibilityViolations(page)).toEqual([]);
  expect(await unreachableByKeyboard(page)).toEqual([]);
  await screenshots(page, "usage");

  await recordGenerations(user, 1);
  await page.reload();
  await expect(page.getByRole("progressbar")).toHaveAttribute("aria-valuenow", "3");
  await expect(page.getByRole("status")).toHaveText("You have used every generation for today.");
});

test("a paid user is warned at 80 % of the month and shown the pace past a fifth of it", async ({ page }) => {
  const user = newUser("usage_creator");
  await grantTier(user, "CREATOR");
  await recordGenerations(user, 40);
  const limits = (await api(user, "GET", "/api/tiers/limits/me")).json;
  // The viewer's clock halfway through the period: 40 of 50 by then runs out at 62.5 % of it.
  const start = Date.parse(limits.period_start);
  const reset = Date.parse(limits.reset_at);
  await page.clock.setFixedTime(start + (reset - start) / 2);
  await signIn(page, user, "/usage");
  await expect(page.getByRole("progressbar", { name: "40 of 50 generations used this month" })).toHaveAttribute(
    "aria-valuemax",
    "50",
  );
  await expect(page.getByRole("status")).toHaveText("You have used 80 % of your generations this month.");
  await expect(page.getByText(`At this rate you run out on ${shownAt(start + (reset - start) * 0.625, ZONE)}.`)).toBeVisible();
});

test("early in the period there is no pace, and STUDIO's storage is unlimited", async ({ page }) => {
  const user = newUser("usage_studio");
  await grantTier(user, "STUDIO");
  await recordGenerations(user, 5);
  const limits = (await api(user, "GET", "/api/tiers/limits/me")).json;
  const start = Date.parse(limits.period_start);
  const reset = Date.parse(limits.reset_at);
  await page.clock.setFixedTime(start + (reset - start) * 0.1);
  await signIn(page, user, "/usage");
  await expect(page.getByRole("progressbar", { name: "5 of 1000 generations used this month" })).toBeVisible();
  await expect(page.getByText("Storage: 0 bytes of Unlimited")).toBeVisible();
  await expect(page.getByText(/At this rate/)).toHaveCount(0);
});

test("credits show beside the allowance and keep a spent day going", async ({ page }) => {
  const user = newUser("usage_credits");
  await grantCredits(user, 2);
  await recordGenerations(user, 3);
  await signIn(page, user, "/usage");
  const limits = (await api(user, "GET", "/api/tiers/limits/me")).json;
  await expect(page.getByText(`0 left · resets ${shownAt(limits.reset_at, ZONE)}`)).toBeVisible();
  await expect(page.getByText("2 credits beside your plan, spent once its generations are used up")).toBeVisible();
  await expect(page.getByRole("status")).toHaveText(
    "You have used every generation for today; your credits pay for the next ones.",
  );
  await recordGenerations(user, 1);
  await page.reload();
  await expect(page.getByText("1 credit beside your plan, spent once its generations are used up")).toBeVisible();
  expect(await accessibilityViolations(page)).toEqual([]);
});

test("a pack bought through Stripe's page starts one checkout and its credits show once paid", async ({ page }) => {
  const user = newUser("usage_pack");
  await recordGenerations(user, 1);
  await signIn(page, user, "/usage");
  await expect(page.getByRole("button", { name: "Buy 50 generations for $19.99" })).toBeVisible();
  // Three clicks in one task, before React renders the button busy or the browser leaves.
  await page
    .getByRole("button", { name: "Buy 10 generations for $4.99" })
    .evaluate((button: HTMLElement) => [1, 2, 3].forEach(() => button.click()));
  await page.waitForURL(`${STRIPE_URL}/c/pay/**`);
  const sessions = (await (await fetch(`${STRIPE_URL}/_stub/requests`)).json()) as {
    method: string;
    path: string;
    params: Record<string, string>;
  }[];
  const mine = sessions.filter(
    (r) => r.method === "POST" && r.path === "/v1/checkout/sessions" && r.params.client_reference_id === user,
  );
  expect(mine).toHaveLength(1);
  expect(mine[0].params.mode).toBe("payment");
  // The stub's hosted page: Pay completes the session, delivers the webhook, returns to the app.
  await page.getByRole("button", { name: "Pay" }).click();
  await page.waitForURL(/\/usage\?credits=success&session_id=cs_test_/);
  await expect(page.getByRole("status").filter({ hasText: "Payment received" })).toHaveText(
    "Payment received: 10 credits added.",
  );
  await expect(page.getByText("10 credits beside your plan, spent once its generations are used up")).toBeVisible();
  expect(await accessibilityViolations(page)).toEqual([]);
});
